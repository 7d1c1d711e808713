/**
 * The load run shared by test/load/load.test.ts and bench/load-bench.ts: N real lab agents (the
 * Agent class as the CLI builds it, each with its own ApiClient and outbox, and a runner that answers
 * at once) against the real API over loopback HTTP, on one store. It counts what the API did from its
 * own log records (every answered status, every claim, every applied completion) and what the runner
 * was asked to do, so exactly-once is checked per job from three sides.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../lab-agent/src/agent.js';
import { ApiClient } from '../../lab-agent/src/api-client.js';
import { createLogger as createAgentLogger } from '../../lab-agent/src/log.js';
import { Outbox } from '../../lab-agent/src/outbox.js';
import type { Runner } from '../../lab-agent/src/runners/types.js';
import type { Logger } from '../../functions/src/log.js';
import type { JobStore } from '../../functions/src/stores/job-store.js';
import { AGENT_TOKEN, startTestApi } from '../harness/api-server.js';

export interface LoadResult {
  store: string;
  agents: number;
  jobs: number;
  /** Seconds to queue the jobs (POST start, 50 at a time). */
  enqueueS: number;
  /** Seconds from the agents' start to the last applied completion. */
  drainS: number;
  claims: number;
  claimsPerS: number;
  jobsPerS: number;
  /** Answered statuses by class: '2xx', '4xx', '5xx'. */
  statuses: Record<string, number>;
  /** Jobs not claimed, run, applied and stored exactly once (empty when all is well). */
  violations: string[];
  exactlyOnce: boolean;
  /** Warnings and errors the agents logged, by event. */
  agentTrouble: Record<string, number>;
  timedOut: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A bound for a race that must not itself keep the process alive once the race is won. */
const bound = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

export async function runLoad(o: { store: JobStore; agents: number; jobs: number; timeoutMs: number; label: string }): Promise<LoadResult> {
  const dir = join(tmpdir(), `lab-relay-load-${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(dir, { recursive: true });
  const statuses: Record<string, number> = {};
  const claimed = new Map<string, number>();
  const applied = new Map<string, string[]>();
  const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  // The API's own records: one per answered request, one per claim, one per applied completion.
  const apiLog = (base: Record<string, unknown>): Logger => ({
    log(_sev, message, fields) {
      const all = { ...base, ...fields };
      const http = all.httpRequest as { status?: number } | undefined;
      if (http?.status !== undefined) {
        const k = `${Math.floor(http.status / 100)}xx`;
        statuses[k] = (statuses[k] ?? 0) + 1;
      }
      const id = all.request_id;
      if (typeof id !== 'string') return;
      if (message === 'request claimed') count(claimed, id);
      const m = /^request (completed|failed|requeued)$/.exec(message);
      if (m && 'agent_id' in all) applied.set(id, [...(applied.get(id) ?? []), m[1]!]);
    },
    child: (f) => apiLog({ ...base, ...f }),
  });
  // No lease runs out during the run: every claim beyond the first would be a fault.
  const t = await startTestApi({ store: o.store, log: apiLog({}), env: { LEASE_SECONDS: '300' } });
  const agents: Agent[] = [];
  const runs: Promise<number>[] = [];
  try {
    const t0 = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < o.jobs; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, o.jobs - i) }, (_, k) => t.call('POST', `/api/inference/${o.label}-${i + k}/start`, { body: { series_ids: ['t1', 't1c', 't2', 'flair'] } })),
      );
      for (const r of batch) {
        if (r.status !== 202) throw new Error(`start answered ${r.status}: ${JSON.stringify(r.body)}`);
        ids.push(r.body.request_id as string);
      }
    }
    const enqueueS = (performance.now() - t0) / 1000;

    const ran = new Map<string, number>();
    const runner: Runner = {
      name: 'instant',
      async run(ctx) {
        count(ran, ctx.id);
        return { success: true, tumor_detected: false, tumor_volume_voxels: 0, inference_time_seconds: 0 };
      },
    };
    const trouble: Record<string, number> = {};
    const agentLog = createAgentLogger({
      level: 'WARNING',
      view: {
        write(rec) {
          const ev = String(rec.fields.event ?? rec.message.slice(0, 40));
          trouble[ev] = (trouble[ev] ?? 0) + 1;
        },
      },
    });
    for (let k = 0; k < o.agents; k++) {
      const agentId = `load-${k}`;
      agents.push(
        new Agent({
          client: new ApiClient({ apiUrl: t.url, token: AGENT_TOKEN, agentId }),
          runner,
          outbox: new Outbox(join(dir, agentId, 'outbox')),
          log: agentLog.child({ agent_id: agentId }),
          agentId,
          slots: 1,
          pollWaitS: 2,
          workRoot: join(dir, agentId, 'work'),
          jobTimeoutMs: 60_000,
          graceMs: 5_000,
          maxBackoffMs: 1_000,
        }),
      );
    }
    const t1 = performance.now();
    for (const a of agents) runs.push(a.run());
    const deadline = Date.now() + o.timeoutMs;
    while (applied.size < o.jobs && Date.now() < deadline) await sleep(50);
    const drainS = (performance.now() - t1) / 1000;
    const timedOut = applied.size < o.jobs;
    for (const a of agents) a.stop();
    await Promise.race([Promise.all(runs), bound(15_000)]);

    const counts = await t.api.store.counts();
    const violations: string[] = [];
    if (counts.completed !== o.jobs) violations.push(`store counts: ${JSON.stringify(counts)}`);
    for (const id of ids) {
      const a = applied.get(id) ?? [];
      if (claimed.get(id) !== 1 || ran.get(id) !== 1 || a.length !== 1 || a[0] !== 'completed') {
        violations.push(`${id}: claimed ${claimed.get(id) ?? 0}, ran ${ran.get(id) ?? 0}, applied [${a.join(',')}]`);
      }
    }
    const unknown = [...ran.keys()].filter((id) => !ids.includes(id));
    if (unknown.length) violations.push(`ran jobs never started: ${unknown.slice(0, 5).join(',')}`);
    const claims = [...claimed.values()].reduce((s, n) => s + n, 0);
    return {
      store: o.store.kind,
      agents: o.agents,
      jobs: o.jobs,
      enqueueS,
      drainS,
      claims,
      claimsPerS: claims / drainS,
      jobsPerS: applied.size / drainS,
      statuses,
      violations: violations.slice(0, 20),
      exactlyOnce: violations.length === 0 && !timedOut,
      agentTrouble: trouble,
      timedOut,
    };
  } finally {
    for (const a of agents) a.stop();
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
