import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FirestoreJobStore } from '../../functions/src/stores/firestore-store.js';
import type { JobStore } from '../../functions/src/stores/job-store.js';
import { SqliteJobStore } from '../../functions/src/stores/sqlite-store.js';
import { startTestApi, type TestApi } from '../harness/api-server.js';
import { describeFirestore, freshFirestore } from '../harness/firestore.js';

const JOBS = 300;
const CLAIMERS = 16;

/** 16 agents racing over HTTP for 300 jobs: every job claimed and completed exactly once, no 5xx. */
function contention(makeStore: () => JobStore): void {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ store: makeStore() });
  });
  afterAll(async () => {
    await t?.close();
  });

  it(`hands ${JOBS} jobs to ${CLAIMERS} concurrent claimers exactly once`, async () => {
    const statuses: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(10, JOBS - i) }, (_, k) => t.call('POST', `/api/inference/study-${i + k}/start`, { body: { series_ids: ['a', 'b', 'c', 'd'] } })),
      );
      for (const r of batch) {
        statuses.push(r.status);
        ids.push(r.body.request_id);
      }
    }
    expect(statuses.every((s) => s === 202)).toBe(true);

    const claims: string[] = [];
    await Promise.all(
      Array.from({ length: CLAIMERS }, async (_, k) => {
        let empty = 0;
        while (empty < 3) {
          const r = await t.call('GET', '/api/inference/pending', { token: 'agent', headers: { 'x-agent-id': `agent-${k}` } });
          statuses.push(r.status);
          if (r.status !== 200) continue;
          if (r.body.id === null) {
            empty++;
            continue;
          }
          empty = 0;
          claims.push(r.body.id);
          const c = await t.call('POST', `/api/inference/${r.body.id}/complete`, {
            token: 'agent',
            body: { success: true, lease_token: r.body.lease_token, tumor_detected: false, tumor_volume_voxels: 0 },
          });
          statuses.push(c.status);
          expect(c.status).toBe(200);
        }
      }),
    );
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(claims).toHaveLength(JOBS);
    expect(new Set(claims)).toEqual(new Set(ids));
    const m = await t.call('GET', '/api/metrics');
    expect(m.body.counts).toMatchObject({ pending: 0, processing: 0, completed: JOBS });
  });
}

describe('claim contention over HTTP: SQLite', () => contention(() => new SqliteJobStore(':memory:')));
describeFirestore('claim contention over HTTP: Firestore emulator', () => contention(() => new FirestoreJobStore(freshFirestore().db)));
