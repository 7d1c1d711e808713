/**
 * Lab agent benchmark: the real agent (its own process, command runner) against the real job API on
 * loopback.
 *   - dispatch latency: a job queued (the start call sent) -> the agent has it (its `claimed` log line),
 *     p50/p99 over N jobs, each queued while the agent sits idle in its long-poll;
 *   - idle CPU: the agent process's CPU time while it only long-polls, over a 60 s window
 *     (from /proc/PID/stat, else `ps`), as a percentage of one core.
 * Run alone: `npx tsx bench/agent-bench.ts` (AGENT_BENCH_JOBS, AGENT_BENCH_IDLE_S override the sizes).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createApi } from '../functions/src/api.js';
import { loadConfig } from '../functions/src/config.js';
import { nodeListener } from '../functions/src/http/node-adapter.js';
import { silentLogger } from '../functions/src/log.js';

import type { BenchRow } from './table.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const AGENT_TOKEN = 'bench-agent-token-0123456789';
const CLIENT_TOKEN = 'bench-client-token-0123456789';

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at ") ": utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    return ticks / hz;
  } catch {
    // No /proc (macOS, Windows with a ps): cumulative "[[dd-]hh:]mm:ss" CPU time.
    const t = execFileSync('ps', ['-o', 'time=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    const [d, rest] = t.includes('-') ? t.split('-') : ['0', t];
    const parts = rest!.split(':').map(Number);
    while (parts.length < 3) parts.unshift(0);
    return Number(d) * 86400 + parts[0]! * 3600 + parts[1]! * 60 + parts[2]!;
  }
}

export async function runAgentBench(): Promise<BenchRow[]> {
  const jobs = Number(process.env.AGENT_BENCH_JOBS ?? 30);
  const idleS = Number(process.env.AGENT_BENCH_IDLE_S ?? 60);
  const dir = mkdtempSync(join(tmpdir(), 'agent-bench-'));
  const cfg = loadConfig({ SQLITE_PATH: ':memory:', INFERENCE_AGENT_TOKENS: AGENT_TOKEN, INFERENCE_CLIENT_TOKENS: CLIENT_TOKEN, LEASE_SECONDS: '30' });
  const api = createApi(cfg, { log: silentLogger });
  const server = createServer(nodeListener(api.handle));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  const claimedAt = new Map<string, number>();
  const completedAt = new Map<string, number>();
  const agent = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'lab-agent/src/cli/main.ts'), 'run', '--api-url', url, '--command', `node "${join(ROOT, 'test/agent/fixtures/job.mjs')}" ok 0`, '--outbox', join(dir, 'outbox'), '--work-dir', join(dir, 'work'), '--log-format', 'json', '--agent-id', 'bench'],
    { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', INFERENCE_AGENT_TOKEN: AGENT_TOKEN }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let ready = false;
  let partial = '';
  agent.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      let rec: { event?: string; job_id?: string; time?: string };
      try {
        rec = JSON.parse(l);
      } catch {
        continue;
      }
      if (rec.event === 'ready') ready = true;
      if (rec.event === 'claimed' && rec.job_id && rec.time) claimedAt.set(rec.job_id, Date.parse(rec.time));
      if (rec.event === 'delivered' && rec.job_id) completedAt.set(rec.job_id, Date.now());
    }
  });
  const waitFor = async (what: string, fn: () => boolean, ms: number) => {
    const end = Date.now() + ms;
    while (!fn()) {
      if (Date.now() > end || agent.exitCode !== null) throw new Error(`agent bench: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  try {
    await waitFor('the agent to start', () => ready, 60_000);
    const latencies: number[] = [];
    const roundTrips: number[] = [];
    for (let i = 0; i < jobs; i++) {
      // Let the agent settle back into its long-poll, as an idle lab PC would be.
      await new Promise((r) => setTimeout(r, 150));
      const t0 = Date.now();
      const res = await fetch(`${url}/api/inference/bench-${i}/start`, {
        method: 'POST',
        headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ series_ids: ['a', 'b', 'c', 'd'] }),
      });
      const id = ((await res.json()) as { request_id: string }).request_id;
      await waitFor(`job ${i} to be claimed`, () => claimedAt.has(id), 30_000);
      latencies.push(claimedAt.get(id)! - t0);
      await waitFor(`job ${i} to be delivered`, () => completedAt.has(id), 30_000);
      roundTrips.push(completedAt.get(id)! - t0);
    }
    latencies.sort((a, b) => a - b);
    roundTrips.sort((a, b) => a - b);

    await new Promise((r) => setTimeout(r, 1000));
    const cpu0 = cpuSeconds(agent.pid!);
    const w0 = Date.now();
    await new Promise((r) => setTimeout(r, idleS * 1000));
    const idlePct = ((cpuSeconds(agent.pid!) - cpu0) / ((Date.now() - w0) / 1000)) * 100;

    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    return [
      { name: `agent dispatch latency p50 (queued -> claimed, ${jobs} jobs)`, value: p50, unit: 'ms', target: '< 100 ms', pass: p50 < 100 },
      { name: `agent dispatch latency p99 (queued -> claimed, ${jobs} jobs)`, value: p99, unit: 'ms', target: '< 500 ms', pass: p99 < 500 },
      { name: 'agent job round trip p50 (queued -> result acknowledged, no-op command)', value: percentile(roundTrips, 50), unit: 'ms' },
      { name: `agent CPU while idle-polling (${idleS} s window)`, value: Math.round(idlePct * 1000) / 1000, unit: '% of one core', target: '< 1%', pass: idlePct < 1 },
    ];
  } finally {
    agent.kill('SIGKILL');
    await api.service.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const rows = await runAgentBench();
  const w = Math.max(...rows.map((r) => r.name.length));
  for (const r of rows) {
    const verdict = r.pass === undefined ? '' : r.pass ? '  ok' : '  MISSED';
    console.log(`${r.name.padEnd(w)}  ${String(r.value).padStart(9)} ${r.unit}${r.target ? `  (target ${r.target})` : ''}${verdict}`);
  }
}
