import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AGENT_TOKEN, CLIENT_TOKEN } from '../harness/api-server.js';

/** The deployed entry point: functions/src/index.ts registered with functions-framework as `api`. */
describe('Cloud Function entry (functions-framework)', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    Object.assign(process.env, {
      JOB_STORE: 'sqlite',
      SQLITE_PATH: ':memory:',
      INFERENCE_AGENT_TOKENS: AGENT_TOKEN,
      INFERENCE_CLIENT_TOKENS: CLIENT_TOKEN,
      LOG_LEVEL: 'ERROR',
    });
    await import('../../functions/src/index.js');
    const { getTestServer } = await import('@google-cloud/functions-framework/testing');
    server = getTestServer('api');
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const call = (method: string, path: string, token: string | null, body?: string) =>
    fetch(url + path, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body } : {}),
    });

  it('serves start, claim and status through the framework', async () => {
    const s = await call('POST', '/api/inference/ff-1/start', CLIENT_TOKEN, JSON.stringify({ series_ids: ['a', 'b', 'c', 'd'] }));
    expect(s.status).toBe(202);
    const id = ((await s.json()) as { request_id: string }).request_id;
    const p = await call('GET', '/api/inference/pending?wait=0', AGENT_TOKEN);
    expect(((await p.json()) as { id: string }).id).toBe(id);
    const st = await call('GET', '/api/inference/ff-1/status', CLIENT_TOKEN);
    expect(((await st.json()) as { status: string }).status).toBe('processing');
  });

  it('keeps the JSON errors: 401, 400 naming the field, 404, 405, 413', async () => {
    expect((await call('GET', '/api/metrics', null)).status).toBe(401);
    const bad = await call('POST', '/api/inference/ff-2/start', CLIENT_TOKEN, JSON.stringify({ series_ids: 'x' }));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/series_ids/);
    expect((await call('GET', '/api/nope', CLIENT_TOKEN)).status).toBe(404);
    expect((await call('PUT', '/api/metrics', CLIENT_TOKEN)).status).toBe(405);
    const big = await call('POST', '/api/inference/ff-3/start', CLIENT_TOKEN, JSON.stringify({ series_ids: ['a', 'b', 'c', 'd'], pad: 'x'.repeat(1_100_000) }));
    expect(big.status).toBe(413);
  });

  it('refuses malformed JSON with a 400 (from the framework body parser)', async () => {
    const r = await call('POST', '/api/inference/ff-4/start', CLIENT_TOKEN, '{"series_ids": [');
    expect(r.status).toBe(400);
  });
});
