import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { ClaimedJob } from '@lab-relay/protocol';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApi, type Api } from '../../functions/src/api.js';
import { loadConfig } from '../../functions/src/config.js';
import { nodeListener } from '../../functions/src/http/node-adapter.js';
import { serveStatic } from '../../functions/src/http/static-files.js';
import { createLogger, silentLogger, type Logger } from '../../functions/src/log.js';
import type { JobStore } from '../../functions/src/stores/job-store.js';
import { freePort } from './firestore-emulator.js';

export const AGENT_TOKEN = 'agent-token-0123456789abcdef';
export const CLIENT_TOKEN = 'client-token-0123456789abcdef';

export interface TestApi {
  api: Api;
  server: Server;
  url: string;
  close(): Promise<void>;
  /** Queues a request for `seriesId` (202 expected) and claims it as an agent: the usual first step of a test. */
  startAndClaim(seriesId: string): Promise<ClaimedJob>;
  /** fetch against the API with a role's token (or none). */
  call(method: string, path: string, opts?: { token?: 'agent' | 'client' | null | string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
}

/** The real API over node:http on a loopback port, with the store and config a test asks for. */
export async function startTestApi(opts: { env?: Record<string, string>; store?: JobStore; log?: Logger; lines?: string[]; webDir?: string } = {}): Promise<TestApi> {
  // The port is chosen first so signed blob URLs (PUBLIC_URL) point at this server.
  const port = await freePort();
  const blobDir = mkdtempSync(join(tmpdir(), 'lab-relay-blobs-'));
  const cfg = loadConfig({
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    BLOB_SIGNING_SECRET: 'test-blob-signing-secret-0123456789abcdef',
    BLOB_DIR: blobDir,
    SQLITE_PATH: ':memory:',
    INFERENCE_AGENT_TOKENS: AGENT_TOKEN,
    INFERENCE_CLIENT_TOKENS: CLIENT_TOKEN,
    CORS_ORIGINS: 'https://viewer.example',
    ...opts.env,
  });
  const log = opts.lines ? createLogger({ level: 'DEBUG', write: (l) => opts.lines!.push(l) }) : (opts.log ?? silentLogger);
  const api = createApi(cfg, { log, ...(opts.store ? { store: opts.store } : {}) });
  const webDir = opts.webDir;
  const server = createServer(nodeListener(api.handle, api.bodyLimit, webDir ? (p, m) => serveStatic(webDir, p, m) : undefined));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const url = `http://127.0.0.1:${port}`;
  const t: TestApi = {
    api,
    server,
    url,
    async close() {
      await api.service.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await api.close();
      rmSync(blobDir, { recursive: true, force: true });
    },
    async startAndClaim(seriesId) {
      const s = await t.call('POST', `/api/inference/${seriesId}/start`, { body: { series_ids: ['t1', 't1c', 't2', 'flair'] } });
      if (s.status !== 202) throw new Error(`start ${seriesId}: ${s.status} ${JSON.stringify(s.body)}`);
      return ClaimedJob.parse((await t.call('GET', '/api/inference/pending', { token: 'agent' })).body);
    },
    async call(method, path, o = {}) {
      const token = o.token === undefined ? 'client' : o.token;
      const headers: Record<string, string> = { ...o.headers };
      if (token === 'agent') headers.authorization = `Bearer ${AGENT_TOKEN}`;
      else if (token === 'client') headers.authorization = `Bearer ${CLIENT_TOKEN}`;
      else if (token) headers.authorization = `Bearer ${token}`;
      let body: string | undefined;
      if (o.body !== undefined) {
        body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      const r = await fetch(url + path, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await r.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* keep text */
      }
      return { status: r.status, body: parsed, headers: r.headers };
    },
  };
  return t;
}
