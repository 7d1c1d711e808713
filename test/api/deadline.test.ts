import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { JobStore } from '../../functions/src/stores/job-store.js';
import { SqliteJobStore } from '../../functions/src/stores/sqlite-store.js';
import { startTestApi, type TestApi } from '../harness/api-server.js';

/** A store that stops answering (Firestore unreachable: its client retries for minutes). */
function hangingStore(): { store: JobStore; hang: (on: boolean) => void } {
  const inner = new SqliteJobStore(':memory:');
  let hanging = false;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'close' || prop === 'watchQueue') return v;
      return (...args: unknown[]) => (hanging ? new Promise(() => {}) : (v as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
  return { store, hang: (on) => (hanging = on) };
}

describe('a store that does not answer', () => {
  const h = hangingStore();
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ store: h.store, env: { STORE_DEADLINE_SECONDS: '1' } });
    await t.call('POST', '/api/inference/d1/start', { body: { series_ids: ['a', 'b', 'c', 'd'] } });
    h.hang(true);
  });
  afterAll(async () => {
    h.hang(false);
    await t.close();
  });

  it('gets 503 with Retry-After within the deadline, never a hang', async () => {
    const t0 = Date.now();
    const r = await t.call('GET', '/api/inference/d1/status');
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(r.body.error).toMatch(/did not answer within 1 s/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('answers healthz with 503 too', async () => {
    const r = await t.call('GET', '/api/healthz', { token: null });
    expect(r.status).toBe(503);
    expect(r.body.ok).toBe(false);
  }, 10_000);

  it('gives a long-poll its wait plus the deadline', async () => {
    const t0 = Date.now();
    const r = await t.call('GET', '/api/inference/pending?wait=1', { token: 'agent' });
    expect(r.status).toBe(503);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
  });
});
