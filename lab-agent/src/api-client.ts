/**
 * The job API as seen from the lab PC: outbound HTTPS calls only, every answer checked against the
 * shared wire schemas. Failures become ApiError (an HTTP status), AuthError (401/403) or NetworkError.
 */
import {
  AGENT_ID_HEADER,
  CompleteResponse,
  HeartbeatResponse,
  PendingResponse,
  UploadsResponse,
  type CompleteRequest,
  type HeartbeatRequest,
} from '@lab-relay/protocol';
import got, { type Got, type Response } from 'got';
import type { z } from 'zod';
import { parseRetryAfter } from './backoff.js';
import { ApiError, AuthError, NetworkError } from './errors.js';

export interface ApiClientOptions {
  apiUrl: string;
  token: string;
  agentId: string;
  /** Client timeout for calls other than the long-poll. */
  requestTimeoutMs?: number;
  userAgent?: string;
}

/** Seconds a long-poll may take beyond its wait before the client gives up (slow proxies, cold starts). */
const LONG_POLL_MARGIN_MS = 15_000;

export class ApiClient {
  private readonly http: Got;
  private readonly timeoutMs: number;

  constructor(o: ApiClientOptions) {
    this.timeoutMs = o.requestTimeoutMs ?? 30_000;
    this.http = got.extend({
      prefixUrl: apiBase(o.apiUrl),
      headers: {
        authorization: `Bearer ${o.token}`,
        [AGENT_ID_HEADER]: o.agentId,
        'user-agent': o.userAgent ?? 'lab-relay-agent',
      },
      // Retries are the agent's business (backoff, outbox): got must not retry POSTs behind our back.
      retry: { limit: 0 },
      throwHttpErrors: false,
      responseType: 'text',
    });
  }

  /** Long-polls for a job: the claimed job, or null when none came within `waitS`. */
  async claim(waitS: number, signal?: AbortSignal) {
    // ack=1: the first heartbeat (sent before any work) confirms the claim; a claim whose answer is
    // lost on the way (this agent stopping, a proxy) goes straight back to the queue.
    const res = await this.call('GET', 'inference/pending', { searchParams: { wait: waitS, ack: 1 }, timeoutMs: waitS * 1000 + LONG_POLL_MARGIN_MS, signal });
    const body = parse(PendingResponse, res, 'GET /api/inference/pending');
    return body.id === null ? null : body;
  }

  async heartbeat(id: string, body: HeartbeatRequest, signal?: AbortSignal) {
    const res = await this.call('POST', `inference/${encodeURIComponent(id)}/heartbeat`, { json: body, signal });
    return parse(HeartbeatResponse, res, 'POST heartbeat');
  }

  async complete(id: string, body: CompleteRequest, signal?: AbortSignal) {
    const res = await this.call('POST', `inference/${encodeURIComponent(id)}/complete`, { json: body, signal });
    return parse(CompleteResponse, res, 'POST complete');
  }

  /** Fresh signed upload URLs for the current lease (the claim's may have expired during a long job). */
  async uploads(id: string, leaseToken: string, signal?: AbortSignal) {
    const res = await this.call('POST', `inference/${encodeURIComponent(id)}/uploads`, { json: { lease_token: leaseToken }, signal });
    return parse(UploadsResponse, res, 'POST uploads').uploads;
  }

  /** `GET /api/healthz` (no token needed): reachability and whether the job store answers. */
  async health(signal?: AbortSignal): Promise<{ ok: boolean; store?: string; error?: string }> {
    const res = await this.call('GET', 'healthz', { signal, acceptStatus: [503] });
    try {
      return JSON.parse(res.body) as { ok: boolean; store?: string; error?: string };
    } catch {
      throw new NetworkError(`GET /api/healthz answered ${res.statusCode} with a body that is not JSON (is the URL the job API?)`);
    }
  }

  /**
   * Proves the token without claiming work: a heartbeat for an id that cannot exist is answered 404
   * when the token is a valid agent token, and 401/403 otherwise.
   */
  async probeToken(signal?: AbortSignal): Promise<void> {
    try {
      await this.call('POST', 'inference/doctor-check/heartbeat', { json: { lease_token: 'doctor-check' }, signal });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return;
      throw err;
    }
    throw new NetworkError('a heartbeat for a request that does not exist was accepted: is this the lab-relay job API?');
  }

  private async call(
    method: 'GET' | 'POST',
    path: string,
    o: { searchParams?: Record<string, number>; json?: unknown; timeoutMs?: number; signal?: AbortSignal | undefined; acceptStatus?: number[] },
  ): Promise<Response<string>> {
    let res: Response<string>;
    try {
      res = await this.http(path, {
        method,
        ...(o.searchParams ? { searchParams: o.searchParams } : {}),
        ...(o.json !== undefined ? { json: o.json } : {}),
        timeout: { request: o.timeoutMs ?? this.timeoutMs },
        ...(o.signal ? { signal: o.signal } : {}),
      });
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new NetworkError('request aborted');
      // got's messages name the cause (ECONNREFUSED, timeout) and never the headers.
      const e = err as { code?: string; message?: string };
      throw new NetworkError(`${method} /api/${path.split('?')[0]}: ${e.code ? e.code + ': ' : ''}${e.message ?? String(err)}`);
    }
    const status = res.statusCode;
    if ((status >= 200 && status < 300) || o.acceptStatus?.includes(status)) return res;
    const reason = errorText(res.body) ?? res.statusMessage ?? '';
    const where = `${method} /api/${path}`;
    if (status === 401 || status === 403) {
      throw new AuthError(status, `the API refused the agent token (${status}${reason ? ': ' + reason : ''}) on ${where}; check --token / INFERENCE_AGENT_TOKEN against the API's INFERENCE_AGENT_TOKENS`);
    }
    throw new ApiError(status, `${where} answered ${status}${reason ? ': ' + reason : ''}`, parseRetryAfter(res.headers['retry-after']));
  }
}

/** Accepts the API's root with or without `/api`, with or without a trailing slash. */
export function apiBase(url: string): string {
  const u = url.replace(/\/+$/, '');
  return (/\/api$/.test(u) ? u : u + '/api') + '/';
}

function errorText(body: string): string | undefined {
  try {
    const j = JSON.parse(body) as { error?: unknown };
    return typeof j.error === 'string' ? j.error.slice(0, 300) : undefined;
  } catch {
    return body ? body.slice(0, 120).replace(/\s+/g, ' ') : undefined;
  }
}

function parse<S extends z.ZodType>(schema: S, res: Response<string>, what: string): z.infer<S> {
  let json: unknown;
  try {
    json = JSON.parse(res.body);
  } catch {
    throw new NetworkError(`${what} answered ${res.statusCode} with a body that is not JSON`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
    throw new NetworkError(`${what} answered with an unexpected body (${issues}); are the agent and the API the same version?`);
  }
  return r.data;
}
