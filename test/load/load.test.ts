/**
 * Load: 32 real lab agents (in-process Agent instances with an instant runner) drain 1,000 jobs from
 * the real API on each store. Every job claimed once, run once, completed once; no 5xx.
 */
import { describe, expect, it } from '@jest/globals';
import { FirestoreJobStore } from '../../functions/src/stores/firestore-store.js';
import { SqliteJobStore } from '../../functions/src/stores/sqlite-store.js';
import { describeFirestore, freshFirestore } from '../harness/firestore.js';
import { runLoad, type LoadResult } from './load-run.js';

const AGENTS = 32;
const JOBS = 1000;

function report(r: LoadResult): void {
  console.log(
    `load ${r.store}: ${r.agents} agents x ${r.jobs} jobs; queued in ${r.enqueueS.toFixed(1)} s; drained in ${r.drainS.toFixed(1)} s ` +
      `= ${r.claimsPerS.toFixed(1)} claims/s, ${r.jobsPerS.toFixed(1)} jobs/s; statuses ${JSON.stringify(r.statuses)}; ` +
      `agent warnings ${JSON.stringify(r.agentTrouble)}; exactly once: ${r.exactlyOnce}`,
  );
}

function expectExactlyOnce(r: LoadResult): void {
  expect(r.timedOut).toBe(false);
  expect(r.violations).toEqual([]);
  expect(r.claims).toBe(JOBS);
  expect(r.statuses['5xx'] ?? 0).toBe(0);
  expect(r.exactlyOnce).toBe(true);
}

describe('load: SQLite', () => {
  it(`${AGENTS} agents x ${JOBS} jobs: each claimed, run and completed exactly once, no 5xx`, async () => {
    const r = await runLoad({ store: new SqliteJobStore(':memory:'), agents: AGENTS, jobs: JOBS, timeoutMs: 120_000, label: 'load-sqlite' });
    report(r);
    expectExactlyOnce(r);
  }, 180_000);
});

describeFirestore('load: Firestore emulator', () => {
  it(`${AGENTS} agents x ${JOBS} jobs: each claimed, run and completed exactly once, no 5xx`, async () => {
    const r = await runLoad({ store: new FirestoreJobStore(freshFirestore().db), agents: AGENTS, jobs: JOBS, timeoutMs: 240_000, label: 'load-fs' });
    report(r);
    expectExactlyOnce(r);
  }, 330_000);
});
