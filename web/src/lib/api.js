// @ts-check
/**
 * Talks to the job API: one place for the bearer token, JSON bodies and turning failures into
 * sentences a radiologist or an operator can act on.
 */

/**
 * @typedef {{ apiKey: string, authDomain: string, projectId: string, authEmulatorUrl?: string }} FirebaseWebConfig
 * @typedef {{ auth: 'token' | 'firebase', token?: string, firebase?: FirebaseWebConfig }} WebConfig
 * @typedef {{ url: string, method: string, headers: Record<string, string>, expires_at: string }} SignedTarget
 * @typedef {{ stage: string, percent: number, updated_at: string }} Progress
 * @typedef {{
 *   request_id: string, series_id: string, series_ids: string[],
 *   status: 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled',
 *   priority: number, result: Record<string, any> | null, seg_instance_id: string | null,
 *   error: string | null, attempts: number, max_attempts: number, progress: Progress | null,
 *   agent_id: string | null, created_at: string, started_at: string | null, completed_at: string | null,
 *   run_at: string | null, cancel_requested: boolean, unfenced: boolean,
 *   downloads?: Record<string, SignedTarget>
 * }} JobView
 */

/** A failed call, with a message meant for people (`message`) and what the server said (`detail`). */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {number} status HTTP status, 0 when the server could not be reached
   * @param {string} [detail]
   */
  constructor(message, status, detail) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
  }
}

/** Where the token comes from; set once by the auth module. */
/** @type {{ token(): Promise<string | null>, rejected(message: string): void }} */
let credentials = { token: async () => null, rejected: () => {} };

/** @param {typeof credentials} c */
export function setCredentials(c) {
  credentials = c;
}

/** @returns {Promise<WebConfig>} */
export async function loadWebConfig() {
  let r;
  try {
    r = await fetch('/api/web-config', { headers: { accept: 'application/json' }, cache: 'no-store' });
  } catch {
    throw new ApiError('Cannot reach the analysis server. Check that it is running and reload the page.', 0);
  }
  if (!r.ok) throw new ApiError(`The server did not send the page settings (HTTP ${r.status}). Reload the page; if this persists, tell the operators.`, r.status);
  return r.json();
}

/**
 * @param {'GET' | 'POST'} method
 * @param {string} path below /api, e.g. `/inference/abc/status`
 * @param {{ body?: unknown, signal?: AbortSignal, allow404?: boolean }} [opts]
 * @returns {Promise<any>} the parsed JSON body (null for an allowed 404)
 */
export async function api(method, path, opts = {}) {
  const token = await credentials.token();
  if (!token) throw new ApiError('You are not signed in. Sign in above to continue.', 401);
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json', authorization: `Bearer ${token}` };
  /** @type {RequestInit} */
  const init = { method, headers, cache: 'no-store' };
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  if (opts.signal) init.signal = opts.signal;
  let r;
  try {
    r = await fetch('/api' + path, init);
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new ApiError('Cannot reach the analysis server. Check the network connection; the page keeps trying.', 0);
  }
  /** @type {any} */
  let body = null;
  const text = await r.text();
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (r.ok) return body;
  if (r.status === 404 && opts.allow404) return null;
  const detail = describeServerError(body, text);
  if (r.status === 401) {
    const msg = 'Your sign-in was not accepted (missing, wrong or expired). Please sign in again.';
    credentials.rejected(msg);
    throw new ApiError(msg, 401, detail);
  }
  throw new ApiError(plainWords(r.status, detail), r.status, detail);
}

/**
 * The server's error text, with field details ("series_ids.t1: must not be empty") when it sent them.
 * @param {any} body
 * @param {string} text
 */
function describeServerError(body, text) {
  if (body && typeof body.error === 'string') {
    const details = Array.isArray(body.details) ? body.details.map((/** @type {any} */ d) => `${d.path}: ${d.message}`).join('; ') : '';
    return details ? `${body.error} (${details})` : body.error;
  }
  return text.slice(0, 200);
}

/**
 * @param {number} status
 * @param {string} detail
 */
function plainWords(status, detail) {
  const said = detail ? ` The server said: ${detail}.` : '';
  switch (status) {
    case 400:
      return `The server refused the request because something in it is not valid.${said}`;
    case 403:
      return `Your account is not allowed to do this. Ask an administrator for the right role.${said}`;
    case 404:
      return `Not found: the request or study does not exist (any more).${said}`;
    case 409:
      return `This cannot be done in the current state of the analysis.${said}`;
    case 413:
      return 'The request is too large for the server.';
    case 429:
    case 503:
      return `The server is busy or briefly unavailable. Please try again in a moment.${said}`;
    default:
      return status >= 500
        ? `The server had a problem (HTTP ${status}). Please try again; if it keeps happening, tell the operators.${said}`
        : `The request failed (HTTP ${status}).${said}`;
  }
}
