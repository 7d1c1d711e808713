import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, MAX_BODY_BYTES, type ApiRequest, type ApiResponse } from './types.js';

/** First value of each header, lower-cased names (node already lower-cases them). */
export function headerRecord(h: IncomingMessage['headers']): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(h)) out[k] = Array.isArray(v) ? v[0] : v;
  return out;
}

/** Cloud Run / Cloud Functions put a trace id here; otherwise a fresh id. */
export function requestIdFrom(headers: Record<string, string | undefined>): string {
  const trace = headers['x-cloud-trace-context']?.split('/')[0];
  return trace && /^[0-9a-f]{8,64}$/i.test(trace) ? trace : randomUUID();
}

/**
 * Path and query as sent. (WHATWG URL parsing would resolve "%2E%2E" and "..": the router should see
 * and refuse exactly what the client sent.)
 */
export function splitUrl(url: string | undefined): { path: string; query: URLSearchParams } {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q < 0 ? { path: raw, query: new URLSearchParams() } : { path: raw.slice(0, q), query: new URLSearchParams(raw.slice(q + 1)) };
}

/** Reads the body, refusing more than the limit as soon as it is exceeded (no unbounded buffering). */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      return reject(new HttpError(413, `body larger than ${limit} bytes`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        chunks.length = 0;
        req.removeAllListeners('data');
        req.resume();
        reject(new HttpError(413, `body larger than ${limit} bytes`));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function writeResponse(res: ServerResponse, r: ApiResponse): void {
  if (res.writableEnded || res.destroyed) return;
  const headers: Record<string, string> = { 'cache-control': 'no-store', ...r.headers };
  if (r.raw) {
    res.writeHead(r.status, { ...headers, 'content-type': r.raw.contentType, 'content-length': r.raw.data.length }).end(r.raw.data);
    return;
  }
  if (r.status === 204 || r.body === null) {
    res.writeHead(r.status, headers).end();
    return;
  }
  const text = JSON.stringify(r.body);
  res
    .writeHead(r.status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
    .end(text);
}

/** A node:http request listener around the framework-neutral app. */
export function nodeListener(
  app: (req: ApiRequest) => Promise<ApiResponse>,
  bodyLimit: (path: string) => number = () => MAX_BODY_BYTES,
  /** Answers non-API paths (the local web page); null falls through to the API's 404. */
  staticFiles?: (path: string, method: string) => Promise<ApiResponse | null>,
) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const headers = headerRecord(req.headers);
    const requestId = requestIdFrom(headers);
    if (staticFiles && !/^\/api(\/|$)/.test(req.url ?? '/')) {
      const r = await staticFiles(splitUrl(req.url).path, req.method ?? 'GET');
      if (r) return writeResponse(res, r);
    }
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    const { path, query } = splitUrl(req.url);
    let rawBody: Buffer | undefined;
    try {
      if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') rawBody = await readBody(req, bodyLimit(path));
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(400, 'could not read the request body');
      writeResponse(res, { status: e.status, body: { success: false, error: e.message }, headers: { 'x-request-id': requestId, connection: 'close' } });
      return;
    }
    const r = await app({
      method: req.method ?? 'GET',
      path,
      query,
      headers,
      rawBody,
      signal: ac.signal,
      requestId,
    });
    writeResponse(res, r);
  };
}
