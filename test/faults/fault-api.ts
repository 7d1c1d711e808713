/**
 * The real job API for the fault matrix: on a port chosen by the test (so it can be stopped and
 * started again on the same port and SQLite file, and put behind a proxy whose URL the signed blob
 * URLs carry), with a logger that counts what the API applied: completions per request and the
 * statuses it answered. The counter outlives an API restart.
 */
import { createServer, type Server } from 'node:http';
import type { JobView } from '@lab-relay/protocol';
import { createApi, type Api } from '../../functions/src/api.js';
import { loadConfig } from '../../functions/src/config.js';
import { nodeListener } from '../../functions/src/http/node-adapter.js';
import type { Logger, Severity } from '../../functions/src/log.js';
import type { JobStore } from '../../functions/src/stores/job-store.js';
import { AGENT_TOKEN, CLIENT_TOKEN } from '../agent/helpers.js';

/** What the API did, read from its own structured log records. */
export class ApiLedger {
  /** Completions the service applied (not replays), per request id: 'completed', 'failed', 'requeued'. */
  readonly applied = new Map<string, string[]>();
  /** Statuses of every answered request. */
  readonly statuses: number[] = [];
  readonly errors: Array<{ message: string; fields: Record<string, unknown> | undefined }> = [];

  logger(): Logger {
    const self = this;
    const make = (base: Record<string, unknown>): Logger => ({
      log(severity: Severity, message: string, fields?: Record<string, unknown>) {
        const all = { ...base, ...fields };
        const http = all.httpRequest as { status?: number } | undefined;
        if (http?.status !== undefined) self.statuses.push(http.status);
        // JobService.complete logs exactly one of these per applied completion, none for a replay.
        const m = /^request (completed|failed|requeued)$/.exec(message);
        if (m && typeof all.request_id === 'string' && 'agent_id' in all) {
          const list = self.applied.get(all.request_id) ?? [];
          list.push(m[1]!);
          self.applied.set(all.request_id, list);
        }
        if (severity === 'ERROR') self.errors.push({ message, fields: all });
      },
      child: (f) => make({ ...base, ...f }),
    });
    return make({});
  }

  completions(id: string): number {
    return this.applied.get(id)?.length ?? 0;
  }

  count5xx(): number {
    return this.statuses.filter((s) => s >= 500).length;
  }
}

export interface FaultApi {
  url: string;
  port: number;
  api: Api;
  stop(): Promise<void>;
  /** Resolves once no request is being handled (handlers outlive clients that gave up on them). */
  idle(timeoutMs: number): Promise<void>;
  call(method: string, path: string, o?: { token?: 'agent' | 'client'; body?: unknown; agentId?: string; timeoutMs?: number }): Promise<{ status: number; body: any }>;
  status(seriesId: string): Promise<JobView>;
  start(seriesId: string, seriesIds: string[], extra?: Record<string, unknown>): Promise<string>;
}

export async function startFaultApi(o: {
  port: number;
  ledger: ApiLedger;
  leaseSeconds: number;
  sqlitePath?: string;
  publicUrl?: string;
  blobDir: string;
  store?: JobStore;
  env?: Record<string, string>;
}): Promise<FaultApi> {
  const cfg = loadConfig({
    PORT: String(o.port),
    PUBLIC_URL: o.publicUrl ?? `http://127.0.0.1:${o.port}`,
    BLOB_DIR: o.blobDir,
    BLOB_SIGNING_SECRET: 'fault-matrix-blob-secret-0123456789abcdef',
    SQLITE_PATH: o.sqlitePath ?? ':memory:',
    INFERENCE_AGENT_TOKENS: AGENT_TOKEN,
    INFERENCE_CLIENT_TOKENS: CLIENT_TOKEN,
    LEASE_SECONDS: String(o.leaseSeconds),
    // A retryable failure would come back after 1 s rather than 10: the matrix stays fast.
    RETRY_BASE_SECONDS: '1',
    ...o.env,
  });
  const api = createApi(cfg, { log: o.ledger.logger(), ...(o.store ? { store: o.store } : {}) });
  const listener = nodeListener(api.handle, api.bodyLimit);
  let inFlight = 0;
  const server: Server = createServer((req, res) => {
    inFlight++;
    void listener(req, res).finally(() => inFlight--);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${o.port}`;
  const call: FaultApi['call'] = async (method, path, c = {}) => {
    const token = c.token ?? 'client';
    const headers: Record<string, string> = { authorization: `Bearer ${token === 'agent' ? AGENT_TOKEN : CLIENT_TOKEN}` };
    if (c.agentId) headers['x-agent-id'] = c.agentId;
    if (c.body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(`${url}/api/${path}`, { method, headers, ...(c.body !== undefined ? { body: JSON.stringify(c.body) } : {}), signal: AbortSignal.timeout(c.timeoutMs ?? 20_000) });
    const text = await r.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      /* keep the text */
    }
    return { status: r.status, body };
  };
  return {
    url,
    port: o.port,
    api,
    call,
    async stop() {
      await api.service.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await api.close();
    },
    async idle(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    },
    async status(seriesId) {
      const r = await call('GET', `inference/${seriesId}/status`);
      if (r.status !== 200) throw new Error(`status ${seriesId}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body as JobView;
    },
    async start(seriesId, seriesIds, extra = {}) {
      const r = await call('POST', `inference/${seriesId}/start`, { body: { series_ids: seriesIds, ...extra } });
      if (r.status >= 300) throw new Error(`start ${seriesId}: ${r.status} ${JSON.stringify(r.body)}`);
      return (r.body as { request_id: string }).request_id;
    },
  };
}

/**
 * A store that counts its calls in flight and, on close, lets them settle first (bounded): the API
 * answers 503 after its deadline but leaves the store call running, and terminating a Firestore
 * client under such a call turns it into a stray "client has already been terminated" error.
 */
export function settlingStore(inner: JobStore, maxWaitMs = 25_000): JobStore {
  let inFlight = 0;
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'close') {
        return async () => {
          const deadline = Date.now() + maxWaitMs;
          while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
          await target.close();
        };
      }
      if (typeof v !== 'function' || prop === 'watchQueue') return v;
      return (...args: unknown[]) => {
        const r = (v as (...a: unknown[]) => unknown).apply(target, args);
        if (!(r instanceof Promise)) return r;
        inFlight++;
        return r.finally(() => inFlight--);
      };
    },
  });
}
