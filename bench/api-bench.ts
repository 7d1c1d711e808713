/**
 * Job API benchmarks, per store: dispatch latency (a job is queued -> an idle long-polling claimer
 * has it) and claim throughput with 1 and 16 concurrent claimers, over real HTTP on loopback.
 */
import type { ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { FirestoreJobStore } from '../functions/src/stores/firestore-store.js';
import type { JobStore } from '../functions/src/stores/job-store.js';
import { SqliteJobStore } from '../functions/src/stores/sqlite-store.js';
import { startTestApi, type TestApi } from '../test/harness/api-server.js';

import { emulatorAvailable, freshFirestore, startFirestoreEmulator, stopEmulator } from '../test/harness/firestore-emulator.js';
import { percentile, printTable, saveResults, type BenchRow } from './table.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function dispatchLatency(t: TestApi, n: number): Promise<number[]> {
  const got = new Map<string, number>();
  let stop = false;
  let polling = false;
  const claimer = (async () => {
    while (!stop) {
      polling = true;
      const r = await t.call('GET', '/api/inference/pending?wait=25', { token: 'agent', headers: { 'x-agent-id': 'bench' } });
      polling = false;
      if (r.body?.id) {
        got.set(r.body.id, performance.now());
        await t.call('POST', `/api/inference/${r.body.id}/complete`, { token: 'agent', body: { success: true, lease_token: r.body.lease_token } });
      }
    }
  })();
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    while (!polling) await sleep(5);
    await sleep(30 + Math.random() * 30); // the claimer is parked in its long-poll
    const t0 = performance.now();
    const s = await t.call('POST', `/api/inference/dispatch-${Date.now()}-${i}/start`, { body: { series_ids: ['a', 'b', 'c', 'd'] } });
    const id = s.body.request_id as string;
    while (!got.has(id)) await sleep(1);
    lat.push(got.get(id)! - t0);
  }
  stop = true;
  await t.call('POST', '/api/inference/dispatch-stop/start', { body: { series_ids: ['a', 'b', 'c', 'd'] } });
  await claimer;
  return lat.sort((a, b) => a - b);
}

async function claimRate(t: TestApi, jobs: number, claimers: number, tag: string): Promise<{ rate: number; exactlyOnce: boolean }> {
  for (let i = 0; i < jobs; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, jobs - i) }, (_, k) => t.call('POST', `/api/inference/${tag}-${i + k}/start`, { body: { series_ids: ['a', 'b', 'c', 'd'] } })),
    );
  }
  const seen: string[] = [];
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: claimers }, async (_, k) => {
      for (let empty = 0; empty < 2; ) {
        const r = await t.call('GET', '/api/inference/pending', { token: 'agent', headers: { 'x-agent-id': `bench-${k}` } });
        if (r.status !== 200) errors++;
        else if (r.body.id === null) empty++;
        else seen.push(r.body.id);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { rate: seen.length / secs, exactlyOnce: errors === 0 && seen.length === jobs && new Set(seen).size === jobs };
}

async function benchStore(label: string, make: () => JobStore, sizes: { dispatch: number; one: number; many: number }, targets: { p50?: number; p99?: number; one?: number; many?: number }): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  let t = await startTestApi({ store: make() });
  const lat = await dispatchLatency(t, sizes.dispatch);
  await t.close();
  const p50 = percentile(lat, 50);
  const p99 = percentile(lat, 99);
  rows.push({ name: `${label}: dispatch latency p50`, value: p50, unit: 'ms', ...(targets.p50 ? { target: `<= ${targets.p50} ms`, pass: p50 <= targets.p50 } : {}) });
  rows.push({ name: `${label}: dispatch latency p99`, value: p99, unit: 'ms', ...(targets.p99 ? { target: `<= ${targets.p99} ms`, pass: p99 <= targets.p99 } : {}) });
  for (const [claimers, jobs, target] of [
    [1, sizes.one, targets.one],
    [16, sizes.many, targets.many],
  ] as const) {
    t = await startTestApi({ store: make() });
    const r = await claimRate(t, jobs, claimers, `rate${claimers}`);
    await t.close();
    rows.push({
      name: `${label}: claims/s, ${claimers} claimer${claimers > 1 ? 's' : ''} (${jobs} jobs, exactly-once ${r.exactlyOnce ? 'yes' : 'NO'})`,
      value: r.rate,
      unit: 'claims/s',
      ...(target ? { target: `>= ${target}, exactly once`, pass: r.rate >= target && r.exactlyOnce } : { pass: r.exactlyOnce }),
    });
  }
  return rows;
}

export async function runApiBench(): Promise<BenchRow[]> {
  const rows = await benchStore('SQLite', () => new SqliteJobStore(':memory:'), { dispatch: 100, one: 3000, many: 3000 }, { p50: 50, p99: 250, one: 1000 });
  let emu: ChildProcess | undefined;
  try {
    if (!process.env.FIRESTORE_EMULATOR_HOST) {
      if (!emulatorAvailable()) {
        console.warn('SKIPPED: Firestore benchmarks (no emulator on this machine)');
        return rows;
      }
      const e = await startFirestoreEmulator();
      emu = e.child;
      process.env.FIRESTORE_EMULATOR_HOST = e.host;
    }
    rows.push(...(await benchStore('Firestore emulator', () => new FirestoreJobStore(freshFirestore().db), { dispatch: 30, one: 150, many: 300 }, { many: 50 })));
  } finally {
    stopEmulator(emu);
    // Later groups must not find an address of an emulator that is gone.
    if (emu) delete process.env.FIRESTORE_EMULATOR_HOST;
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await runApiBench();
  printTable('Job API', rows);
  console.log(`results: ${saveResults('api', rows)}`);
  process.exit(0);
}
