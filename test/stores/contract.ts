import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { ServiceError } from '../../functions/src/service/job-service.js';
import type { JobStore } from '../../functions/src/stores/job-store.js';
import { ManualClock, SERIES4, serviceFor, TEST_POLICY } from '../harness/service.js';

/**
 * One behaviour, two stores: every store must pass this suite. It drives the JobService (the only
 * user of a store) with a manual clock, so lease expiry, backoff and TTL need no sleeping.
 */
export function jobStoreContract(makeStore: () => Promise<JobStore> | JobStore): void {
  let store: JobStore;
  let clock: ManualClock;
  let svc: ReturnType<typeof serviceFor>;
  const opened: JobStore[] = [];

  beforeEach(async () => {
    store = await makeStore();
    opened.push(store);
    clock = new ManualClock();
    svc = serviceFor(store, { clock });
  });
  afterAll(async () => {
    for (const s of opened) await s.close().catch(() => undefined);
  });

  const rejects = async (p: Promise<unknown>, status: number, text?: RegExp) => {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as ServiceError).status).toBe(status);
    if (text) expect((err as ServiceError).message).toMatch(text);
  };

  describe('start', () => {
    it('queues a request and returns the same one for a repeated start', async () => {
      const a = await svc.start('s1', { series_ids: SERIES4 });
      expect(a.created).toBe(true);
      expect(a.body.status).toBe('pending');
      const b = await svc.start('s1', { series_ids: SERIES4 });
      expect(b.created).toBe(false);
      expect(b.body.existing).toBe(true);
      expect(b.body.request_id).toBe(a.body.request_id);
    });

    it('refuses different series_ids for a live request, and force replaces it', async () => {
      const a = await svc.start('s1', { series_ids: SERIES4 });
      await rejects(svc.start('s1', { series_ids: ['a', 'b', 'c', 'd'] }), 409, /force/);
      const b = await svc.start('s1', { series_ids: ['a', 'b', 'c', 'd'], force: true });
      expect(b.created).toBe(true);
      const old = await store.get(a.body.request_id);
      expect(old?.job.status).toBe('cancelled');
      expect(old?.job.error).toContain(b.body.request_id);
      expect((await svc.status('s1'))?.request_id).toBe(b.body.request_id);
    });

    it('queues a new run after a failed or cancelled request, and returns a completed one', async () => {
      const a = await svc.start('s1', { series_ids: SERIES4 });
      await svc.cancel(a.body.request_id);
      const b = await svc.start('s1', { series_ids: SERIES4 });
      expect(b.created).toBe(true);
      const c = await svc.claim('pc1', 0);
      await svc.complete(c!.id, 'pc1', { success: true, lease_token: c!.lease_token });
      const d = await svc.start('s1', { series_ids: SERIES4 });
      expect(d.created).toBe(false);
      expect(d.body.status).toBe('completed');
    });

    it('creates exactly one request when the same series is started concurrently', async () => {
      const all = await Promise.all(Array.from({ length: 8 }, () => svc.start('race', { series_ids: SERIES4 })));
      expect(new Set(all.map((r) => r.body.request_id)).size).toBe(1);
      expect(all.filter((r) => r.created)).toHaveLength(1);
    });
  });

  describe('claim', () => {
    it('hands out the highest priority first, then the oldest, each once', async () => {
      const low = await svc.start('low', { series_ids: SERIES4 });
      clock.advance(1000);
      const high = await svc.start('high', { series_ids: SERIES4, priority: 5 });
      clock.advance(1000);
      const low2 = await svc.start('low2', { series_ids: SERIES4 });
      const got = [await svc.claim('pc', 0), await svc.claim('pc', 0), await svc.claim('pc', 0), await svc.claim('pc', 0)];
      expect(got.map((g) => g?.id ?? null)).toEqual([high.body.request_id, low.body.request_id, low2.body.request_id, null]);
      const first = got[0]!;
      expect(first.series_ids).toEqual(SERIES4);
      expect(first.attempt).toBe(1);
      expect(first.lease_token.length).toBeGreaterThanOrEqual(32);
      expect(Date.parse(first.lease_expires_at)).toBe(clock.t + TEST_POLICY.leaseMs);
      expect(first.heartbeat_interval_s).toBe(15);
    });

    it('hands a job whose lease ran out to another agent as the next attempt, and fences the first', async () => {
      await svc.start('s1', { series_ids: SERIES4 });
      const a = (await svc.claim('pc-a', 0))!;
      clock.advance(TEST_POLICY.leaseMs - 1);
      expect(await svc.claim('pc-b', 0)).toBeNull();
      clock.advance(2);
      const b = (await svc.claim('pc-b', 0))!;
      expect(b.id).toBe(a.id);
      expect(b.attempt).toBe(2);
      await rejects(svc.heartbeat(a.id, 'pc-a', { lease_token: a.lease_token }), 409);
      await rejects(svc.complete(a.id, 'pc-a', { success: true, lease_token: a.lease_token }), 409);
      const done = await svc.complete(b.id, 'pc-b', { success: true, lease_token: b.lease_token });
      expect(done.status).toBe('completed');
    });

    it('fails a job whose lease ran out on its last attempt, with the reason', async () => {
      await svc.start('s1', { series_ids: SERIES4, max_attempts: 2 });
      for (let i = 0; i < 2; i++) {
        expect(await svc.claim('pc', 0)).not.toBeNull();
        clock.advance(TEST_POLICY.leaseMs + 1);
      }
      expect(await svc.claim('pc', 0)).toBeNull();
      const st = (await svc.status('s1'))!;
      expect(st.status).toBe('failed');
      expect(st.error).toMatch(/lease expired.*attempt 2 of 2/);
    });

    it('requeues a claim made with ack=1 that was never acknowledged, without using an attempt', async () => {
      await svc.start('s1', { series_ids: SERIES4, max_attempts: 1 });
      const lost = (await svc.claim('pc-a', 0, undefined, true))!;
      expect(Date.parse(lost.lease_expires_at)).toBe(clock.t + TEST_POLICY.ackMs);
      clock.advance(TEST_POLICY.ackMs + 1);
      const again = (await svc.claim('pc-b', 0, undefined, true))!;
      expect(again.id).toBe(lost.id);
      expect(again.attempt).toBe(1);
      await rejects(svc.heartbeat(lost.id, 'pc-a', { lease_token: lost.lease_token }), 409);
      // The first heartbeat acknowledges: the full lease from then on, and expiry counts as an attempt.
      const hb = await svc.heartbeat(again.id, 'pc-b', { lease_token: again.lease_token });
      expect(Date.parse(hb.lease_expires_at)).toBe(clock.t + TEST_POLICY.leaseMs);
      clock.advance(TEST_POLICY.leaseMs + 1);
      expect(await svc.claim('pc-c', 0, undefined, true)).toBeNull();
      expect((await svc.status('s1'))!.status).toBe('failed');
    });

    it('counts unacknowledged claims as attempts after a few (a job that kills agents cannot loop forever)', async () => {
      await svc.start('s1', { series_ids: SERIES4, max_attempts: 1 });
      for (let i = 0; i < 3; i++) {
        expect((await svc.claim('pc', 0, undefined, true))!.attempt).toBe(1);
        clock.advance(TEST_POLICY.ackMs + 1);
      }
      expect(await svc.claim('pc', 0, undefined, true)).not.toBeNull();
      clock.advance(TEST_POLICY.ackMs + 1);
      expect(await svc.claim('pc', 0, undefined, true)).toBeNull();
      expect((await svc.status('s1'))!.error).toMatch(/lease expired on agent pc/);
    });

    it('fails a request nobody claimed within the TTL', async () => {
      await svc.start('s1', { series_ids: SERIES4 });
      clock.advance(TEST_POLICY.pendingTtlMs + 1);
      const st = (await svc.status('s1'))!;
      expect(st.status).toBe('failed');
      expect(st.error).toMatch(/expired: no agent claimed/);
      expect(await svc.claim('pc', 0)).toBeNull();
    });

    it('hands each of many jobs to exactly one of many concurrent claimers', async () => {
      const n = 40;
      for (let i = 0; i < n; i++) await svc.start(`c${i}`, { series_ids: SERIES4 });
      const seen: string[] = [];
      await Promise.all(
        Array.from({ length: 8 }, async (_, k) => {
          for (;;) {
            const j = await svc.claim(`pc${k}`, 0);
            if (!j) {
              const counts = await store.counts();
              if (counts.pending === 0) return;
              continue;
            }
            seen.push(j.id);
          }
        }),
      );
      expect(seen).toHaveLength(n);
      expect(new Set(seen).size).toBe(n);
    });
  });

  describe('heartbeat', () => {
    it('extends the lease and records progress; a foreign token is refused', async () => {
      await svc.start('s1', { series_ids: SERIES4 });
      const a = (await svc.claim('pc', 0))!;
      clock.advance(30_000);
      const hb = await svc.heartbeat(a.id, 'pc', { lease_token: a.lease_token, progress: { stage: 'infer', percent: 40 } });
      expect(hb.cancel).toBe(false);
      expect(Date.parse(hb.lease_expires_at)).toBe(clock.t + TEST_POLICY.leaseMs);
      const st = (await svc.status('s1'))!;
      expect(st.progress).toMatchObject({ stage: 'infer', percent: 40 });
      await rejects(svc.heartbeat(a.id, 'pc', { lease_token: 'not-the-token' }), 409);
      await rejects(svc.heartbeat('nope', 'pc', { lease_token: a.lease_token }), 404);
      // renewed: still ours after the original expiry
      clock.advance(TEST_POLICY.leaseMs - 1000);
      expect(await svc.claim('pc2', 0)).toBeNull();
    });
  });

  describe('complete', () => {
    it('stores the result, answers a replay without a change, and refuses a different second completion', async () => {
      await svc.start('s1', { series_ids: SERIES4 });
      const a = (await svc.claim('pc', 0))!;
      const body = { success: true, lease_token: a.lease_token, seg_instance_id: 'seg-1', tumor_detected: true, tumor_volume_voxels: 1234, inference_time_seconds: 45.2, volumes_ml: { edema: 1.5 } };
      expect(await svc.complete(a.id, 'pc', body)).toEqual({ success: true, status: 'completed', replay: false });
      clock.advance(5000);
      expect(await svc.complete(a.id, 'pc', body)).toEqual({ success: true, status: 'completed', replay: true });
      await rejects(svc.complete(a.id, 'pc', { ...body, tumor_volume_voxels: 1 }), 409);
      const st = (await svc.status('s1'))!;
      expect(st.status).toBe('completed');
      expect(st.seg_instance_id).toBe('seg-1');
      expect(st.result).toMatchObject({ tumor_detected: true, tumor_volume_voxels: 1234, volumes_ml: { edema: 1.5 } });
      expect(st.result).not.toHaveProperty('lease_token');
      expect(st.completed_at).toBe(new Date(clock.t - 5000).toISOString());
    });

    it('requeues a retryable failure with backoff, then fails it after max_attempts with the last error', async () => {
      await svc.start('s1', { series_ids: SERIES4, max_attempts: 2 });
      const a = (await svc.claim('pc', 0))!;
      const r = await svc.complete(a.id, 'pc', { success: false, retryable: true, error: 'PACS timed out', lease_token: a.lease_token });
      expect(r.status).toBe('pending');
      const st = (await svc.status('s1'))!;
      // attempt 1 -> base 10 s, equal jitter with random 0.5 -> 7.5 s
      expect(Date.parse(st.run_at!)).toBe(clock.t + 7500);
      expect(st.error).toBe('PACS timed out');
      expect(await svc.claim('pc', 0)).toBeNull();
      clock.advance(7500);
      const b = (await svc.claim('pc', 0))!;
      expect(b.attempt).toBe(2);
      const r2 = await svc.complete(b.id, 'pc', { success: false, retryable: true, error: 'PACS timed out again', lease_token: b.lease_token });
      expect(r2.status).toBe('failed');
      const st2 = (await svc.status('s1'))!;
      expect(st2.error).toBe('PACS timed out again (after 2 of 2 attempts)');
      expect(st2.attempts).toBe(2);
    });

    it('fails a non-retryable failure at once', async () => {
      await svc.start('s1', { series_ids: SERIES4 });
      const a = (await svc.claim('pc', 0))!;
      expect((await svc.complete(a.id, 'pc', { success: false, error: 'series t2 has a missing slice', lease_token: a.lease_token })).status).toBe('failed');
      expect((await svc.status('s1'))!.error).toBe('series t2 has a missing slice');
    });

    it("accepts the seed worker's completion without a lease only while processing, marked unfenced", async () => {
      await svc.start('s1', { series_ids: SERIES4 });
      const a = (await svc.claim('pc', 0))!;
      const r = await svc.complete(a.id, 'pc', { success: true, seg_instance_id: 'x' });
      expect(r.status).toBe('completed');
      expect((await svc.status('s1'))!.unfenced).toBe(true);
      await rejects(svc.complete(a.id, 'pc', { success: false }), 409);
      await rejects(svc.complete('unknown-id', 'pc', { success: true }), 404, /Request not found/);
      await svc.start('s2', { series_ids: SERIES4 });
      const pendingId = (await svc.status('s2'))!.request_id;
      await rejects(svc.complete(pendingId, 'pc', { success: true }), 409);
    });
  });

  describe('cancel and retry', () => {
    it('cancels a running job: its heartbeat says cancel, its completion is refused, retry queues it again', async () => {
      await svc.start('s1', { series_ids: SERIES4 });
      const a = (await svc.claim('pc', 0))!;
      const c = await svc.cancel(a.id);
      expect(c.status).toBe('cancelled');
      expect(c.cancel_requested).toBe(true);
      expect((await svc.heartbeat(a.id, 'pc', { lease_token: a.lease_token })).cancel).toBe(true);
      await rejects(svc.complete(a.id, 'pc', { success: true, lease_token: a.lease_token }), 409, /cancelled/);
      expect((await svc.cancel(a.id)).status).toBe('cancelled');
      const r = await svc.retry(a.id);
      expect(r.status).toBe('pending');
      expect(r.attempts).toBe(0);
      await rejects(svc.heartbeat(a.id, 'pc', { lease_token: a.lease_token }), 409);
      const b = (await svc.claim('pc', 0))!;
      expect(b.id).toBe(a.id);
      expect(b.attempt).toBe(1);
    });

    it('refuses to cancel a finished job or retry a live or completed one', async () => {
      await svc.start('s1', { series_ids: SERIES4 });
      const id = (await svc.status('s1'))!.request_id;
      await rejects(svc.retry(id), 409);
      const a = (await svc.claim('pc', 0))!;
      await svc.complete(a.id, 'pc', { success: true, lease_token: a.lease_token });
      await rejects(svc.cancel(id), 409);
      await rejects(svc.retry(id), 409, /force/);
      await rejects(svc.cancel('missing'), 404);
    });
  });

  describe('read side', () => {
    it('lists newest first with a cursor and a status filter', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        ids.push((await svc.start(`l${i}`, { series_ids: SERIES4 })).body.request_id);
        clock.advance(1000);
      }
      await svc.cancel(ids[1]!);
      const p1 = await svc.list({ limit: 2 });
      expect(p1.items.map((j) => j.request_id)).toEqual([ids[4], ids[3]]);
      const p2 = await svc.list({ limit: 2, cursor: p1.next_cursor! });
      expect(p2.items.map((j) => j.request_id)).toEqual([ids[2], ids[1]]);
      const p3 = await svc.list({ limit: 2, cursor: p2.next_cursor! });
      expect(p3.items.map((j) => j.request_id)).toEqual([ids[0]]);
      expect(p3.next_cursor).toBeNull();
      const cancelled = await svc.list({ limit: 10, status: 'cancelled' });
      expect(cancelled.items.map((j) => j.request_id)).toEqual([ids[1]]);
    });

    it('reports counts, queue depth, oldest pending age and recently seen agents', async () => {
      await svc.start('m1', { series_ids: SERIES4 });
      clock.advance(10_000);
      await svc.start('m2', { series_ids: SERIES4 });
      await svc.start('m3', { series_ids: SERIES4 });
      const a = (await svc.claim('pc-7', 0))!;
      await svc.heartbeat(a.id, 'pc-7', { lease_token: a.lease_token });
      clock.advance(5000);
      const m = await svc.metrics();
      expect(m.counts).toMatchObject({ pending: 2, processing: 1, completed: 0, failed: 0, cancelled: 0 });
      expect(m.queue_depth).toBe(2);
      expect(m.oldest_pending_age_s).toBe(5);
      expect(m.agents.map((x) => x.agent_id)).toEqual(['pc-7']);
      expect(m.agents[0]!.current_request_id).toBe(a.id);
      expect(m.agents[0]!.last_heartbeat_at).toBe(new Date(clock.t - 5000).toISOString());
      clock.advance(301_000);
      expect((await svc.metrics()).agents).toEqual([]);
    });
  });

  describe('long-poll', () => {
    it('answers a waiting claimer as soon as a job is queued', async () => {
      const real = serviceFor(store); // real clock: this one waits
      const t0 = Date.now();
      const waiting = real.claim('pc', 10_000);
      await new Promise((r) => setTimeout(r, 300));
      await real.start('lp', { series_ids: SERIES4 });
      const job = await waiting;
      expect(job?.series_id).toBe('lp');
      expect(Date.now() - t0).toBeLessThan(5000);
      await real.close();
    });

    it('never claims for a client that has gone, and releases a claim made as it left', async () => {
      await svc.start('gone', { series_ids: SERIES4 });
      const gone = new AbortController();
      gone.abort();
      expect(await svc.claim('pc', 5000, gone.signal)).toBeNull();
      expect((await svc.status('gone'))!.status).toBe('pending');
      // The client leaves while the claim is being written: the claim is undone at once.
      const leaving = new AbortController();
      const racing = serviceFor(
        new Proxy(store, {
          get(target, prop, receiver) {
            if (prop !== 'update') return Reflect.get(target, prop, receiver);
            return async (...args: Parameters<JobStore['update']>) => {
              const r = await target.update(...args);
              if (args[0].status === 'processing') leaving.abort();
              return r;
            };
          },
        }),
        { clock },
      );
      expect(await racing.claim('pc', 0, leaving.signal)).toBeNull();
      const st = (await svc.status('gone'))!;
      expect(st.status).toBe('pending');
      expect(st.attempts).toBe(0);
      const next = (await svc.claim('pc2', 0))!;
      expect(next.attempt).toBe(1);
    });

    it('answers {id: null} after the wait when nothing comes, and at once when the client leaves', async () => {
      const real = serviceFor(store);
      const t0 = Date.now();
      expect(await real.claim('pc', 600)).toBeNull();
      expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
      const ac = new AbortController();
      const p = real.claim('pc', 20_000, ac.signal);
      setTimeout(() => ac.abort(), 100);
      expect(await p).toBeNull();
      expect(Date.now() - t0).toBeLessThan(5000);
      await real.close();
    });
  });
}
