import { AGENT_ID_HEADER, AgentId } from '@lab-relay/protocol';
import type { Logger } from '../log.js';
import type { FsBlobStore } from '../blobs/fs-blob-store.js';
import { agentRoutes } from '../routes/agent-routes.js';
import { blobRoutes } from '../routes/blob-routes.js';
import { clientRoutes } from '../routes/client-routes.js';
import { healthRoutes } from '../routes/health-routes.js';
import type { Route, WebConfig } from '../routes/route.js';
import { ServiceError, type JobService } from '../service/job-service.js';
import { BadCursorError } from '../stores/job-store.js';
import type { TokenAuth } from './auth.js';
import { IdTokenError, looksLikeJwt, type IdTokenVerifier } from './id-tokens.js';
import { corsHeaders, preflight } from './cors.js';
import { HttpError, MAX_BODY_BYTES, type ApiRequest, type ApiResponse } from './types.js';
import { validate } from './validate.js';

export interface AppDeps {
  service: JobService;
  auth: TokenAuth;
  corsOrigins: string[];
  log: Logger;
  fsBlobs?: FsBlobStore | null;
  blobMaxBytes?: number;
  webConfig?: WebConfig;
  /** Firebase ID tokens for people, on client routes (null: static tokens only). */
  idTokens?: IdTokenVerifier | null;
  /** How long a request may wait on the store (a long-poll: its wait plus this) before a 503. */
  deadlineMs?: number;
}

const DEFAULT_DEADLINE_MS = 7000;

/**
 * The Firestore client retries an unreachable backend for minutes; a caller should hear "unavailable,
 * retry" within seconds instead. The abandoned call finishes (or fails) in the background: every store
 * write is a compare-and-set or idempotent, so a late write is harmless (an undelivered claim is
 * released by its ack deadline).
 */
function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new HttpError(503, `the job store did not answer within ${Math.round(ms / 1000)} s; retry`, {}, { 'retry-after': '5' })),
      ms,
    );
  });
  p.catch(() => undefined);
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const ROUTES: Route[] = [...agentRoutes, ...clientRoutes, ...healthRoutes, ...blobRoutes];

/**
 * The whole HTTP API as one function from request to response, independent of the server that
 * carries it (functions-framework in the cloud, node:http locally, or a test calling it directly).
 */
/** Blob uploads may be larger than JSON bodies; adapters ask before reading a body. */
export function bodyLimitFor(path: string, blobMaxBytes: number): number {
  return /^(\/api)?\/blobs\//.test(path) ? blobMaxBytes : MAX_BODY_BYTES;
}

export function createApp(deps: AppDeps): (req: ApiRequest) => Promise<ApiResponse> {
  return async (req) => {
    const started = Date.now();
    const log = deps.log.child({ request_id: req.requestId });
    const cors = corsHeaders(req.headers.origin, deps.corsOrigins);
    let res: ApiResponse;
    let routeName = 'unmatched';
    try {
      if (req.method === 'OPTIONS') {
        res = preflight(req.headers.origin, deps.corsOrigins);
      } else {
        const found = match(req.method, req.path);
        routeName = found.route.path;
        res = await dispatch(found.route, found.params, req, deps, log);
      }
    } catch (err) {
      res = toErrorResponse(err, log);
    }
    res.headers = { ...cors, ...res.headers, 'x-request-id': req.requestId };
    // The path holds series and request ids (PACS keys, not patient attributes); headers are never logged.
    log.log(res.status >= 500 ? 'ERROR' : 'INFO', `${req.method} ${routeName} ${res.status}`, {
      httpRequest: { requestMethod: req.method, requestUrl: req.path, status: res.status, latency: `${(Date.now() - started) / 1000}s` },
    });
    return res;
  };
}

function match(method: string, rawPath: string): { route: Route; params: Record<string, string> } {
  const path = rawPath.replace(/^\/api(?=\/|$)/, '');
  const segs = path.split('/').filter((s, i, a) => s !== '' || (i > 0 && i < a.length - 1));
  let decoded: string[];
  try {
    decoded = segs.map((s) => decodeURIComponent(s));
  } catch {
    throw new HttpError(400, 'path contains an invalid percent-encoding');
  }
  const allowed = new Set<string>();
  for (const route of ROUTES) {
    const pat = route.path.split('/');
    const rest = pat[pat.length - 1]!.startsWith('*');
    if (rest ? decoded.length < pat.length : pat.length !== decoded.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < pat.length && ok; i++) {
      const p = pat[i]!;
      if (p.startsWith('*')) params[p.slice(1)] = decoded.slice(i).join('/');
      else if (p.startsWith(':')) params[p.slice(1)] = decoded[i]!;
      else ok = p === decoded[i];
    }
    if (!ok) continue;
    // `inference/pending` is also the shape of `inference/:series_id/...`; literal routes win.
    if (route.method === method) return { route, params };
    allowed.add(route.method);
  }
  if (allowed.size) throw new HttpError(405, `method ${method} not allowed here`, {}, { allow: [...allowed, 'OPTIONS'].join(', ') });
  throw new HttpError(404, `no such endpoint: ${method} ${rawPath.slice(0, 200)}`);
}

async function dispatch(route: Route, params: Record<string, string>, req: ApiRequest, deps: AppDeps, log: Logger): Promise<ApiResponse> {
  let agentId = '';
  if (route.role) {
    const { roles, fingerprint, token } = deps.auth.rolesOf(req.headers.authorization);
    if (roles.size === 0 && token && deps.idTokens && route.role === 'client' && looksLikeJwt(token)) {
      let user;
      try {
        user = await deps.idTokens.verify(token);
      } catch (err) {
        if (err instanceof IdTokenError) throw new HttpError(401, err.message, {}, { 'www-authenticate': 'Bearer error="invalid_token"' });
        throw err;
      }
      if (route.permission && !user.permissions.has(route.permission)) {
        throw new HttpError(403, `this needs the ${route.permission} role`);
      }
      roles.add('client');
    }
    if (roles.size === 0) {
      throw new HttpError(401, req.headers.authorization ? 'invalid token' : 'missing bearer token', {}, { 'www-authenticate': 'Bearer' });
    }
    if (!roles.has(route.role)) throw new HttpError(403, `this endpoint needs a${route.role === 'agent' ? 'n agent' : ' client'} token`);
    if (route.role === 'agent') {
      const named = req.headers[AGENT_ID_HEADER];
      agentId = named !== undefined ? validate(AgentId, named, 'header') : `agent-${fingerprint}`;
    }
  }
  const body = route.method === 'POST' ? readJsonBody(req) : undefined;
  const wait = route.path === 'inference/pending' ? Math.min(25, Math.max(0, Number(req.query.get('wait')) || 0)) * 1000 : 0;
  // healthz bounds its own store check (and answers in its own shape).
  const deadline = route.path === 'healthz' ? 60_000 : (deps.deadlineMs ?? DEFAULT_DEADLINE_MS) + wait;
  return withDeadline(route.handle({ req, params, body, service: deps.service, agentId, log, fsBlobs: deps.fsBlobs ?? null, blobMaxBytes: deps.blobMaxBytes ?? MAX_BODY_BYTES, webConfig: deps.webConfig ?? { auth: 'token' } }), deadline);
}

function readJsonBody(req: ApiRequest): unknown {
  if (req.rawBody && req.rawBody.length > MAX_BODY_BYTES) throw new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`);
  if (req.parsedBody !== undefined && !Buffer.isBuffer(req.parsedBody) && typeof req.parsedBody !== 'string') {
    // functions-framework parsed JSON already; an empty object there may also mean "no body".
    return req.parsedBody;
  }
  if (!req.rawBody || req.rawBody.length === 0) return undefined;
  try {
    return JSON.parse(req.rawBody.toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

function toErrorResponse(err: unknown, log: Logger): ApiResponse {
  if (err instanceof HttpError) {
    return { status: err.status, body: { success: false, error: err.message, ...err.extra }, headers: err.headers };
  }
  if (err instanceof ServiceError) return { status: err.status, body: { success: false, error: err.message } };
  if (err instanceof BadCursorError) return { status: 400, body: { success: false, error: `invalid query: cursor: ${err.message}` } };
  if (isUnavailable(err)) {
    log.log('ERROR', 'store unavailable', { error: (err as Error).message });
    return { status: 503, body: { success: false, error: 'job store temporarily unavailable; retry' }, headers: { 'retry-after': '5' } };
  }
  log.log('ERROR', 'unhandled error', { error: (err as Error)?.message, stack: (err as Error)?.stack });
  return { status: 500, body: { success: false, error: 'internal error' } };
}

/** gRPC UNAVAILABLE / DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED from Firestore, SQLITE_BUSY locally. */
function isUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === 14 || code === 4 || code === 8 || code === 'SQLITE_BUSY';
}
