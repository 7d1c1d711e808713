/**
 * Load benchmark: 32 real lab agents (in-process, instant runner) drain 1,000 jobs from the real API
 * over loopback HTTP, per store. Reports claims/s and jobs/s (a job = claim, first heartbeat,
 * completion) and whether every job was claimed, run and completed exactly once with no 5xx.
 * Runs alone with `npx tsx bench/load-bench.ts`.
 */
import type { ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { FirestoreJobStore } from '../functions/src/stores/firestore-store.js';
import { SqliteJobStore } from '../functions/src/stores/sqlite-store.js';
import { emulatorAvailable, freshFirestore, startFirestoreEmulator, stopEmulator } from '../test/harness/firestore-emulator.js';
import { runLoad, type LoadResult } from '../test/load/load-run.js';
import { printTable, saveResults, type BenchRow } from './table.js';

const AGENTS = 32;
const JOBS = 1000;

function rows(label: string, r: LoadResult): BenchRow[] {
  const fiveXX = r.statuses['5xx'] ?? 0;
  return [
    { name: `${label}: claims/s, ${r.agents} agents x ${r.jobs} jobs`, value: r.claimsPerS, unit: 'claims/s' },
    { name: `${label}: jobs/s (claim + heartbeat + complete)`, value: r.jobsPerS, unit: 'jobs/s' },
    { name: `${label}: exactly once, no 5xx`, value: r.exactlyOnce && fiveXX === 0 ? 1 : 0, unit: 'flag', target: '1', pass: r.exactlyOnce && fiveXX === 0 },
  ];
}

export async function runLoadBench(): Promise<Array<{ name: string; value: number; unit: string; target?: string; pass?: boolean }>> {
  const out: BenchRow[] = [];
  out.push(...rows('SQLite', await runLoad({ store: new SqliteJobStore(':memory:'), agents: AGENTS, jobs: JOBS, timeoutMs: 180_000, label: `bench-load-sqlite-${Date.now()}` })));
  let emu: ChildProcess | undefined;
  try {
    // A variable left behind by an earlier group whose emulator is gone (bench/api-bench.ts does not unset it) is no emulator.
    if (!(await answers(process.env.FIRESTORE_EMULATOR_HOST))) {
      if (!emulatorAvailable()) {
        console.warn('SKIPPED: Firestore load benchmark (no emulator on this machine)');
        return out;
      }
      const e = await startFirestoreEmulator();
      emu = e.child;
      process.env.FIRESTORE_EMULATOR_HOST = e.host;
    }
    out.push(...rows('Firestore emulator', await runLoad({ store: new FirestoreJobStore(freshFirestore().db), agents: AGENTS, jobs: JOBS, timeoutMs: 300_000, label: `bench-load-fs-${Date.now()}` })));
  } finally {
    if (emu) {
      stopEmulator(emu);
      delete process.env.FIRESTORE_EMULATOR_HOST;
    }
  }
  return out;
}

async function answers(host: string | undefined): Promise<boolean> {
  if (!host) return false;
  try {
    await fetch(`http://${host}/`, { signal: AbortSignal.timeout(2000) });
    return true;
  } catch {
    return false;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await runLoadBench();
  printTable('Load (32 agents)', r);
  console.log(`results: ${saveResults('load', r)}`);
  process.exit(0);
}
