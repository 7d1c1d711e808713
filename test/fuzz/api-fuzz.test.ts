import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createApi, type Api } from '../../functions/src/api.js';
import { loadConfig } from '../../functions/src/config.js';
import type { ApiRequest } from '../../functions/src/http/types.js';
import { silentLogger } from '../../functions/src/log.js';
import { AGENT_TOKEN, CLIENT_TOKEN } from '../harness/api-server.js';

/**
 * 10,000 generated requests across every endpoint, straight into the app (no sockets): never a 5xx,
 * always a JSON error body for 4xx, and a rejected request never changes the stored state.
 */
const RUNS = 10_000;

const segment = fc.oneof(
  fc.constantFrom('inference', 'pending', 'start', 'status', 'heartbeat', 'complete', 'cancel', 'retry', 'uploads', 'metrics', 'healthz', 'blobs', 'requests'),
  fc.constantFrom('..', '.', '%2F', '%2E%2E', '%00', '%', '%E0%A4%A', 'a%2Fb', '__x__', ' ', '%20', 'series-1', 'known-id'),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.string({ unit: 'grapheme', maxLength: 8 }).map(encodeURIComponent),
  fc.integer({ min: 200, max: 5000 }).map((n) => 'x'.repeat(n)),
);
const path = fc
  .tuple(fc.constantFrom('/api', '', '/api/api', '//api'), fc.array(segment, { minLength: 0, maxLength: 5 }), fc.constantFrom('', '/'))
  .map(([prefix, segs, tail]) => `${prefix}/${segs.join('/')}${tail}`);
const knownPath = fc.constantFrom(
  '/api/inference/series-1/start',
  '/api/inference/pending',
  '/api/inference/known-id/heartbeat',
  '/api/inference/known-id/complete',
  '/api/inference/known-id/uploads',
  '/api/inference/series-1/status',
  '/api/inference/known-id/cancel',
  '/api/inference/known-id/retry',
  '/api/inference',
  '/api/metrics',
  '/api/healthz',
  '/api/blobs/requests/known-id/1/seg.dcm',
);
const jsonish = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.record(
    {
      series_ids: fc.oneof(fc.array(fc.string({ maxLength: 300 }), { maxLength: 6 }), fc.dictionary(fc.string({ maxLength: 6 }), fc.string()), fc.anything()),
      priority: fc.oneof(fc.integer(), fc.double(), fc.string()),
      force: fc.anything(),
      lease_token: fc.oneof(fc.string({ maxLength: 200 }), fc.integer()),
      success: fc.anything(),
      retryable: fc.anything(),
      progress: fc.anything(),
      outputs: fc.anything(),
    },
    { requiredKeys: [] },
  ).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
);
const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
  path: fc.oneof(path, knownPath),
  query: fc.oneof(
    fc.constant(''),
    fc.constantFrom('wait=0', 'wait=26', 'wait=-1', 'wait=abc', 'limit=0', 'limit=201', 'limit=5&status=nope', 'cursor=%%%', 'status=pending', 'wait=0&wait=1', 'sig=x&expires=1&method=PUT&ct=a'),
    fc.string({ maxLength: 40 }),
  ),
  auth: fc.constantFrom('agent', 'client', 'none', 'garbage', 'basic'),
  agentHeader: fc.option(fc.string({ maxLength: 80 }), { nil: undefined }),
  body: fc.option(jsonish, { nil: undefined }),
});

describe('API fuzzing', () => {
  let api: Api;
  beforeAll(async () => {
    api = createApi(loadConfig({ SQLITE_PATH: ':memory:', INFERENCE_AGENT_TOKENS: AGENT_TOKEN, INFERENCE_CLIENT_TOKENS: CLIENT_TOKEN, BLOB_STORE: 'none' }), { log: silentLogger });
    // Some state for the generated requests to hit: one pending and one processing request.
    await api.service.start('series-1', { series_ids: ['a', 'b', 'c', 'd'] });
    await api.service.start('series-2', { series_ids: ['a', 'b', 'c', 'd'] });
    await api.service.claim('fuzz-agent', 0);
  });
  afterAll(async () => {
    await api.close();
  });

  async function snapshot(): Promise<string> {
    const page = await api.store.list({ limit: 500 });
    return JSON.stringify(page.items.map((j) => [j.id, j.status, j.updated_at, j.attempts, j.lease_token, j.progress]));
  }

  it(`answers ${RUNS} generated requests without a 5xx, and rejected ones change nothing`, async () => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string | undefined> = {};
        if (r.auth === 'agent') headers.authorization = `Bearer ${AGENT_TOKEN}`;
        if (r.auth === 'client') headers.authorization = `Bearer ${CLIENT_TOKEN}`;
        if (r.auth === 'garbage') headers.authorization = 'Bearer \u0000\u00ff not a token';
        if (r.auth === 'basic') headers.authorization = 'Basic dXNlcjpwYXNz';
        if (r.agentHeader !== undefined) headers['x-agent-id'] = r.agentHeader;
        if (r.body !== undefined) headers['content-type'] = 'application/json';
        const before = await snapshot();
        const req: ApiRequest = {
          method: r.method,
          path: r.path,
          query: new URLSearchParams(r.query),
          headers,
          rawBody: r.body === undefined ? undefined : Buffer.from(r.body, 'utf8'),
          signal: new AbortController().signal,
          requestId: randomUUID(),
        };
        const res = await api.handle(req);
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        expect(res.status).toBeLessThan(500);
        if (res.status >= 400) {
          expect(typeof (res.body as { error?: unknown }).error).toBe('string');
          expect(await snapshot()).toBe(before);
        }
      }),
      { numRuns: RUNS, seed: 20261204 },
    );
    // The generator must reach past authentication into validation and the handlers.
    expect(seen.get(400) ?? 0).toBeGreaterThan(100);
    expect(seen.get(401) ?? 0).toBeGreaterThan(100);
    expect(seen.get(403) ?? 0).toBeGreaterThan(100);
    expect(seen.get(404) ?? 0).toBeGreaterThan(100);
    expect(seen.get(405) ?? 0).toBeGreaterThan(10);
  });
});
