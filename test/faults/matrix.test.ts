/**
 * The fault matrix: the real agent (a child process where it is SIGKILLed, in-process otherwise)
 * against the real API on loopback, with test/harness/proxy.ts between them where the network
 * misbehaves. For every cell the request ends `completed` with exactly one applied completion (the
 * API's own log, counted by ApiLedger), the expected attempt count, and the user's program run the
 * expected number of times (its MARK_DIR marks); or `failed` with a reason. Never stuck: every wait
 * is bounded. The suite prints the matrix at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import type { JobView } from '@lab-relay/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { FirestoreJobStore } from '../../functions/src/stores/firestore-store.js';
import { AGENT_TOKEN, FIXTURE, exited, removeDir, spawnAgent, startAgent, tempDir, waitFor, type InProcessAgent, type LogLine } from '../agent/helpers.js';
import { EMULATOR_BIN, freePort } from '../harness/firestore-emulator.js';
import { on, startProxy, type TestProxy } from '../harness/proxy.js';
import { ApiLedger, settlingStore, startFaultApi } from './fault-api.js';

interface Row {
  cell: string;
  outcome: string;
  attempts: number | string;
  applied: number;
  runs: number | string;
  seconds: string;
}
const matrix: Row[] = [];

let root: string;
const cleanups: Array<() => Promise<void> | void> = [];
const children: ChildProcess[] = [];

beforeAll(() => {
  root = tempDir('faults');
});
afterEach(async () => {
  // Children first (a dead agent cannot reconnect), then agents, proxies and servers, newest first.
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  // Each step bounded: a server stuck on a dead store must not stall the rest of the suite.
  for (const fn of cleanups.splice(0).reverse()) await Promise.race([Promise.resolve(fn()).catch(() => undefined), bound(15_000)]);
});
afterAll(() => {
  removeDir(root);
  const head: Row = { cell: 'cell', outcome: 'outcome', attempts: 'attempts', applied: 0, runs: 'runs', seconds: 'time (s)' };
  const cols = ['cell', 'outcome', 'attempts', 'applied', 'runs', 'seconds'] as const;
  const text = (r: Row, k: (typeof cols)[number]) => (r === head && k === 'applied' ? 'completions applied' : String(r[k]));
  const w = cols.map((k) => Math.max(...[head, ...matrix].map((r) => text(r, k).length)));
  const line = (r: Row) => '| ' + cols.map((k, i) => text(r, k).padEnd(w[i]!)).join(' | ') + ' |';
  console.log(['FAULT MATRIX', line(head), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...matrix.map(line)].join('\n'));
});

/** One cell's world: its folder, marks, ledger, API (optionally behind a proxy), and agents. */
async function cell(name: string, o: { lease: number; proxy?: boolean; sqlite?: boolean; store?: 'firestore'; firestore?: Firestore }) {
  const dir = join(root, name);
  const marks = join(dir, 'marks');
  mkdirSync(marks, { recursive: true });
  const ledger = new ApiLedger();
  const port = await freePort();
  const proxy: TestProxy | null = o.proxy ? await startProxy(port) : null;
  if (proxy) cleanups.push(() => proxy.close());
  const apiOpts = {
    port,
    ledger,
    leaseSeconds: o.lease,
    blobDir: join(dir, 'blobs'),
    // Signed blob URLs point where the agent reaches the API: through the proxy when there is one.
    ...(proxy ? { publicUrl: proxy.url } : {}),
    ...(o.sqlite ? { sqlitePath: join(dir, 'jobs.sqlite') } : {}),
    ...(o.firestore ? { store: settlingStore(new FirestoreJobStore(o.firestore)) } : {}),
  };
  const ctx = {
    dir,
    marks,
    ledger,
    proxy,
    api: await startFaultApi(apiOpts),
    t0: Date.now(),
    /** The URL agents use. */
    get agentUrl() {
      return proxy ? proxy.url : ctx.api.url;
    },
    async restartApi() {
      ctx.api = await startFaultApi(apiOpts);
    },
    /** `lab-agent run` as a child process (so it can be SIGKILLed). */
    child(agentName: string, extra: string[] = []) {
      const c = spawnAgent(
        ['run', '--api-url', ctx.agentUrl, '--command', `node "${FIXTURE}" auto`, '--outbox', join(dir, agentName, 'outbox'), '--work-dir', join(dir, agentName, 'work'), '--poll-wait', '2', '--max-backoff', '1', '--agent-id', agentName, ...extra],
        { INFERENCE_AGENT_TOKEN: AGENT_TOKEN, MARK_DIR: marks },
      );
      children.push(c);
      return c;
    },
    /** The agent in this process; `outboxOf` reuses another agent's outbox (a restart on the same PC). */
    async inProcess(agentName: string, outboxOf = agentName): Promise<InProcessAgent> {
      const a = await startAgent(
        { apiUrl: ctx.agentUrl, command: `node "${FIXTURE}" auto`, outbox: join(dir, outboxOf, 'outbox'), workDir: join(dir, agentName, 'work'), pollWait: '2', maxBackoff: '1', agentId: agentName },
        { MARK_DIR: marks },
      );
      cleanups.push(() => a.stop().then(() => undefined));
      return a;
    },
    /** How many times the user's program started for request `id`. */
    runs(id: string): number {
      const f = join(marks, `${id}.start`);
      return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').length : 0;
    },
    outboxFiles(agentName: string): string[] {
      const d = join(dir, agentName, 'outbox');
      return existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.result.json')) : [];
    },
    async settled(series: string, timeoutMs = 30_000): Promise<JobView> {
      return waitFor(`${series} completed or failed`, async () => {
        const s = await ctx.api.status(series);
        return s.status === 'completed' || s.status === 'failed' ? s : null;
      }, timeoutMs, 200);
    },
    record(cellName: string, v: JobView, id: string, note = '') {
      matrix.push({
        cell: cellName,
        outcome: (v.status === 'failed' ? `failed: ${v.error}` : v.status) + (note ? `; ${note}` : ''),
        attempts: v.attempts,
        applied: ledger.completions(id),
        runs: ctx.runs(id),
        seconds: ((Date.now() - ctx.t0) / 1000).toFixed(1),
      });
    },
  };
  cleanups.push(() => ctx.api.stop());
  return ctx;
}

const ready = (lines: LogLine[]) => lines.some((l) => l.event === 'ready');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A bound for a race that must not itself keep the process alive once the race is won. */
const bound = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());
/** Lines of one job's acknowledgements ('delivered', with `replay`). */
const deliveries = (lines: LogLine[], id: string) => lines.filter((l) => l.job_id === id && l.event === 'delivered');

/** The common end of a cell: completed once, by the expected attempt, with the program run `runs` times. */
function expectCompletedOnce(c: Awaited<ReturnType<typeof cell>>, v: JobView, id: string, attempts: number, runs: number) {
  expect(v.status).toBe('completed');
  expect(v.attempts).toBe(attempts);
  expect(c.ledger.completions(id)).toBe(1);
  expect(c.ledger.applied.get(id)).toEqual(['completed']);
  expect(c.runs(id)).toBe(runs);
  expect(c.ledger.count5xx()).toBe(0);
}

describe('fault matrix: the agent killed with SIGKILL', () => {
  it('(a) early in the job (claimed, before its first heartbeat: the download stage): the unconfirmed claim is requeued without using an attempt; another agent completes it', async () => {
    const c = await cell('kill-early', { lease: 3, proxy: true });
    // The agent's first heartbeat comes before any work; holding it keeps the agent at that point.
    c.proxy!.delay(on('POST', /\/heartbeat$/), 60_000);
    const a = c.child('a-early');
    await waitFor('agent A ready', () => ready(a.lines), 30_000);
    const firstBeat = c.proxy!.nextRequest(on('POST', /\/heartbeat$/));
    const id = await c.api.start('fm-a', ['ok', '300', 'c', 'd']);
    await firstBeat;
    a.kill('SIGKILL');
    await exited(a);
    c.proxy!.pass();
    const b = await c.inProcess('b-early');
    const v = await c.settled('fm-a');
    // A never confirmed its claim (the first heartbeat with ack=1 is what confirms it), so the claim
    // went back to the queue without using an attempt: B's run is attempt 1.
    expectCompletedOnce(c, v, id, 1, 1);
    expect(v.agent_id).toBe('b-early');
    expect(v.seg_instance_id).toBe('seg-fm-a');
    expect(deliveries(b.lines, id)).toHaveLength(1);
    c.record('SIGKILL (a) early: claimed, before the first heartbeat', v, id, 'unconfirmed claim requeued, not an attempt');
  }, 60_000);

  it('(b) during inference (the program running): the lease runs out, the next attempt completes it', async () => {
    const c = await cell('kill-infer', { lease: 3 });
    const a = c.child('a-infer');
    await waitFor('agent A ready', () => ready(a.lines), 30_000);
    const id = await c.api.start('fm-b', ['ok', '1500', 'c', 'd']);
    await waitFor('program started by A', () => c.runs(id) === 1);
    await waitFor('progress from the program reached the API', async () => (await c.api.status('fm-b')).progress?.stage === 'infer', 10_000);
    a.kill('SIGKILL');
    await exited(a);
    await c.inProcess('b-infer');
    const v = await c.settled('fm-b');
    expectCompletedOnce(c, v, id, 2, 2);
    expect(v.agent_id).toBe('b-infer');
    c.record('SIGKILL (b) during inference', v, id);
  }, 60_000);

  it('(c) during the upload of outputs: attempt 2 uploads under its own prefix and completes; attempt 1 left nothing', async () => {
    const c = await cell('kill-upload', { lease: 3, proxy: true });
    c.proxy!.delay(on('PUT', /\/blobs\//), 60_000);
    const a = c.child('a-upload');
    await waitFor('agent A ready', () => ready(a.lines), 30_000);
    const put = c.proxy!.nextRequest(on('PUT', /\/blobs\//));
    const id = await c.api.start('fm-c', ['outputs', '0', 'c', 'd']);
    await put;
    a.kill('SIGKILL');
    await exited(a);
    c.proxy!.pass();
    await c.inProcess('b-upload');
    const v = await c.settled('fm-c');
    expectCompletedOnce(c, v, id, 2, 2);
    const outputs = (v.result as { outputs: Record<string, { object: string }> }).outputs;
    expect(outputs.seg!.object).toBe(`requests/${id}/2/seg.dcm`);
    expect(existsSync(join(c.dir, 'blobs', 'requests', id, '1'))).toBe(false);
    const seg = await fetch(v.downloads!.seg!.url);
    expect(await seg.text()).toBe('segmentation of fm-c');
    c.record('SIGKILL (c) during upload', v, id);
  }, 60_000);

  it('(d) with the result in the outbox before complete was sent: the restarted agent delivers it from the outbox', async () => {
    // A lease long enough for the restart to come back within it.
    const c = await cell('kill-outbox', { lease: 8, proxy: true });
    c.proxy!.refuse(on('POST', /\/complete$/));
    const a = c.child('a-outbox');
    await waitFor('agent A ready', () => ready(a.lines), 30_000);
    const id = await c.api.start('fm-d', ['ok', '200', 'c', 'd']);
    await waitFor('A tried to send the completion and failed', () => a.lines.some((l) => l.job_id === id && l.event === 'delivery-retry'), 20_000);
    a.kill('SIGKILL');
    await exited(a);
    expect(c.outboxFiles('a-outbox')).toHaveLength(1);
    expect((await c.api.status('fm-d')).status).toBe('processing');
    c.proxy!.pass();
    const b = await c.inProcess('b-outbox', 'a-outbox');
    const v = await c.settled('fm-d');
    expectCompletedOnce(c, v, id, 1, 1);
    expect(v.agent_id).toBe('a-outbox');
    expect(v.seg_instance_id).toBe('seg-fm-d');
    await waitFor('B acknowledged', () => deliveries(b.lines, id).length === 1);
    expect(deliveries(b.lines, id)[0]!.replay).toBe(false);
    expect(c.outboxFiles('a-outbox')).toHaveLength(0);
    c.record('SIGKILL (d) result in outbox, complete not sent', v, id);
  }, 60_000);

  it('(d2) as (d), but the restart comes after the job was requeued: the stale outbox entry is refused (409) and dropped, the job runs again once', async () => {
    const c = await cell('kill-outbox-late', { lease: 3, proxy: true });
    c.proxy!.refuse(on('POST', /\/complete$/));
    const a = c.child('a-late');
    await waitFor('agent A ready', () => ready(a.lines), 30_000);
    const id = await c.api.start('fm-d2', ['ok', '200', 'c', 'd']);
    await waitFor('A tried to send the completion and failed', () => a.lines.some((l) => l.job_id === id && l.event === 'delivery-retry'), 20_000);
    a.kill('SIGKILL');
    await exited(a);
    // Status reads run the expiry sweep: the dead agent's lease runs out and the job is queued again.
    await waitFor('requeued by expiry', async () => (await c.api.status('fm-d2')).status === 'pending', 15_000, 500);
    c.proxy!.pass();
    const b = await c.inProcess('b-late', 'a-late');
    const v = await c.settled('fm-d2');
    expectCompletedOnce(c, v, id, 2, 2);
    expect(v.agent_id).toBe('b-late');
    expect(b.lines.filter((l) => l.job_id === id && l.event === 'refused').map((l) => l.status)).toEqual([409]);
    await waitFor('B acknowledged its own result', () => deliveries(b.lines, id).length === 1);
    expect(c.outboxFiles('a-late')).toHaveLength(0);
    c.record('SIGKILL (d2) outbox replayed after requeue: 409, re-run', v, id);
  }, 60_000);

  it('(e) after complete was applied but before the acknowledgement: the restart replays it, answered 200 replay: true, applied once', async () => {
    const c = await cell('kill-ack', { lease: 4, proxy: true });
    const dropped = c.proxy!.dropNextResponse(on('POST', /\/complete$/));
    const a = c.child('a-ack');
    await waitFor('agent A ready', () => ready(a.lines), 30_000);
    const id = await c.api.start('fm-e', ['ok', '200', 'c', 'd']);
    const rec = await dropped;
    // A's retry (>= 250 ms later) must not get through before it dies.
    c.proxy!.cut();
    a.kill('SIGKILL');
    await exited(a);
    expect(rec.status).toBe(200);
    expect((await c.api.status('fm-e')).status).toBe('completed');
    expect(c.outboxFiles('a-ack')).toHaveLength(1);
    c.proxy!.pass();
    const b = await c.inProcess('b-ack', 'a-ack');
    await waitFor('B delivered the outbox entry', () => deliveries(b.lines, id).length === 1, 20_000);
    expect(deliveries(b.lines, id)[0]).toMatchObject({ replay: true, status: 'completed' });
    const v = await c.settled('fm-e');
    expectCompletedOnce(c, v, id, 1, 1);
    expect(c.outboxFiles('a-ack')).toHaveLength(0);
    expect(c.proxy!.records.filter((r) => /\/complete$/.test(r.path) && r.status !== null).map((r) => r.outcome)).toEqual(['dropped', 'answered']);
    c.record('SIGKILL (e) applied, ack lost; replayed', v, id);
  }, 60_000);
});

describe('fault matrix: the API and its store', () => {
  it('the API server restarted mid-job (SQLite file, same port): the agent rides it out, completed once, same attempt', async () => {
    const c = await cell('api-restart', { lease: 4, sqlite: true });
    const a = await c.inProcess('agent-api');
    const id = await c.api.start('fm-api', ['ok', '2500', 'c', 'd']);
    await waitFor('program started', () => c.runs(id) === 1);
    await c.api.stop();
    await sleep(2500);
    await c.restartApi();
    const v = await c.settled('fm-api');
    expectCompletedOnce(c, v, id, 1, 1);
    // The outage was felt: heartbeats or the delivery had to retry.
    expect(a.lines.some((l) => l.event === 'heartbeat-retry' || l.event === 'delivery-retry')).toBe(true);
    await waitFor('acknowledged', () => deliveries(a.lines, id).length === 1);
    c.record('API restarted mid-job (SQLite)', v, id);
  }, 60_000);

  const fsIt = existsSync(EMULATOR_BIN) ? it : it.skip;
  if (!existsSync(EMULATOR_BIN)) console.warn(`SKIPPED (no Firestore emulator at ${EMULATOR_BIN}): the Firestore-restart cell`);

  fsIt('the Firestore emulator restarted mid-job (its data exported and re-imported): never a 500, the agent rides it out, completed once', async () => {
    // An emulator of our own on its own port: the suite-wide one must not be restarted under other suites.
    const port = await freePort();
    const exportDir = join(root, 'fs-export');
    mkdirSync(exportDir, { recursive: true });
    let emu = await startEmulator(port);
    cleanups.push(() => killGroup(emu));
    const projectId = `demo-faults-${Date.now().toString(36)}`;
    const db = firestoreAt(`127.0.0.1:${port}`, projectId);
    cleanups.push(() => db.terminate());
    // The lease outlasts the outage as the API sees it (restart plus the gRPC channel's reconnect
    // backoff: 6-18 s on a busy 2-core machine); a shorter one lets a sweep requeue the job (attempt 2).
    const c = await cell('fs-restart', { lease: 25, firestore: db });
    const a = await c.inProcess('agent-fs');
    const id = await c.api.start('fm-fs', ['ok', '3000', 'c', 'd']);
    await waitFor('program started', () => c.runs(id) === 1, 20_000);
    // Production Firestore keeps its data across an outage; the emulator keeps it only through export/import.
    const exp = await fetch(`http://127.0.0.1:${port}/emulator/v1/projects/${projectId}:export`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ database: `projects/${projectId}/databases/(default)`, export_directory: exportDir }),
    });
    expect(exp.status).toBe(200);
    killGroup(emu, 'SIGKILL');
    await exited(emu);
    // A client asking while the store is down: held in the Firestore client's retries (see the next
    // test), answered once the store is back; never a 500.
    const askedAt = Date.now();
    const during = c.api.call('GET', 'inference/fm-fs/status', { timeoutMs: 60_000 }).then((r) => ({ ...r, s: (Date.now() - askedAt) / 1000 }));
    await sleep(1500);
    const meta = readdirSync(exportDir).map((d) => join(exportDir, d, `${d}.overall_export_metadata`)).find(existsSync);
    expect(meta).toBeDefined();
    emu = await startEmulator(port, meta);
    const v = await c.settled('fm-fs', 40_000);
    const d = await during;
    expect([200, 503]).toContain(d.status);
    expect(c.ledger.statuses.filter((s) => s === 500)).toEqual([]);
    expect(v.status).toBe('completed');
    expect(v.attempts).toBe(1);
    expect(c.ledger.completions(id)).toBe(1);
    expect(c.runs(id)).toBe(1);
    await waitFor('acknowledged', () => deliveries(a.lines, id).length === 1);
    c.record('Firestore emulator restarted mid-job (export/import)', v, id, `status asked while down: ${d.status} after ${d.s.toFixed(1)} s`);
  }, 90_000);
  // Found by this matrix: the Firestore client retries an unreachable backend for minutes, so requests
  // hung instead of answering 503; fixed by the request deadline (STORE_DEADLINE_SECONDS, d9381a9).
  fsIt('Firestore unreachable: healthz and status answer 503 within seconds (Retry-After), never hang or 500', async () => {
    const port = await freePort();
    let revived: ChildProcess | undefined;
    cleanups.push(() => revived && killGroup(revived));
    const db = firestoreAt(`127.0.0.1:${port}`, `demo-unreachable-${Date.now().toString(36)}`);
    const c = await cell('fs-unreachable', { lease: 4, firestore: db });
    // The hung calls retry until a store answers: give them one so the client can be closed.
    cleanups.push(async () => {
      revived = await startEmulator(port);
      await c.api.idle(20_000);
    });
    const t = Date.now();
    const [health, status] = await Promise.all([
      c.api.call('GET', 'healthz', { timeoutMs: 15_000 }).catch((e: Error) => ({ status: `no answer (${e.name})`, body: null })),
      c.api.call('GET', 'inference/fm-x/status', { timeoutMs: 15_000 }).catch((e: Error) => ({ status: `no answer (${e.name})`, body: null })),
    ]);
    const took = (Date.now() - t) / 1000;
    matrix.push({ cell: 'Firestore unreachable from the start', outcome: `healthz: ${health.status}, status: ${status.status}`, attempts: '-', applied: 0, runs: '-', seconds: took.toFixed(1) });
    expect(health.status).toBe(503);
    expect(status.status).toBe(503);
    // The deadline is 7 s (healthz: 5 s); a busy machine may add a little.
    expect(took).toBeLessThan(12);
    expect(c.ledger.statuses.filter((s) => s === 500)).toEqual([]);
  }, 45_000);
});

describe('fault matrix: the network and the protocol', () => {
  it('the answer to a claim lost on the way (the proxy drops it): the unconfirmed claim returns to the queue, same attempt, run once', async () => {
    const c = await cell('claim-lost', { lease: 3, proxy: true });
    // The job is queued before the agent starts, so the agent's first poll claims it and that answer is lost.
    const lost = c.proxy!.dropNextResponse(on('GET', /\/inference\/pending/));
    const id = await c.api.start('fm-claim-lost', ['ok', '200', 'c', 'd']);
    const a = await c.inProcess('agent-claim-lost');
    const rec = await lost;
    expect(rec.status).toBe(200);
    const v = await c.settled('fm-claim-lost');
    expectCompletedOnce(c, v, id, 1, 1);
    await waitFor('acknowledged', () => deliveries(a.lines, id).length === 1);
    expect(a.lines.filter((l) => l.job_id === id && l.event === 'claimed')).toHaveLength(1);
    c.record('claim answer dropped by the network', v, id, 'requeued unconfirmed, not an attempt');
  }, 45_000);

  it('the network cut for a while, then slowed: heartbeats and the completion get through late, completed once', async () => {
    const c = await cell('net', { lease: 4, proxy: true });
    const a = await c.inProcess('agent-net');
    const id = await c.api.start('fm-net', ['ok', '3000', 'c', 'd']);
    await waitFor('program started', () => c.runs(id) === 1);
    c.proxy!.cut();
    await sleep(2500);
    c.proxy!.pass();
    c.proxy!.slow(150);
    const v = await c.settled('fm-net');
    expectCompletedOnce(c, v, id, 1, 1);
    // The cut was felt: requests in flight were reset or new connections refused.
    expect(c.proxy!.cutConnections + c.proxy!.records.filter((r) => r.outcome === 'cut').length).toBeGreaterThan(0);
    expect(a.lines.some((l) => l.job_id === id && l.event === 'heartbeat-retry')).toBe(true);
    await waitFor('acknowledged', () => deliveries(a.lines, id).length === 1);
    c.record('network cut 2.5 s, then slowed 150 ms/chunk', v, id);
  }, 60_000);

  it('the network cut for longer than the lease while another agent is up: it takes over; the cut-off agent learns 409 and its result is dropped', async () => {
    const c = await cell('partition', { lease: 3, proxy: true });
    // A reaches the API through the proxy; B directly (the cut is on A's side only).
    const a = await c.inProcess('agent-cut-off');
    const id = await c.api.start('fm-part', ['ok', '2000', 'c', 'd']);
    await waitFor('A started the program', () => c.runs(id) === 1);
    c.proxy!.cut();
    const b = await startB();
    const byB = await waitFor('B completed it', async () => {
      const s = await c.api.status('fm-part');
      return s.status === 'completed' ? s : null;
    }, 30_000);
    c.proxy!.pass();
    // A comes back: its heartbeat or its result is refused, and nothing more is applied.
    await waitFor('A told its lease is gone', () => a.lines.some((l) => l.job_id === id && (l.event === 'lease-lost' || l.event === 'refused' || l.event === 'skipped')), 20_000);
    const v = await c.api.status('fm-part');
    expectCompletedOnce(c, v, id, 2, 2);
    expect([byB.agent_id, v.agent_id]).toEqual(['agent-b', 'agent-b']);
    expect(deliveries(a.lines, id)).toHaveLength(0);
    expect(deliveries(b.lines, id)).toHaveLength(1);
    expect(c.outboxFiles('agent-cut-off')).toHaveLength(0);
    c.record('network cut longer than the lease; another agent takes over', v, id);

    async function startB() {
      const x = await startAgent(
        { apiUrl: c.api.url, command: `node "${FIXTURE}" auto`, outbox: join(c.dir, 'agent-b', 'outbox'), workDir: join(c.dir, 'agent-b', 'work'), pollWait: '2', maxBackoff: '1', agentId: 'agent-b' },
        { MARK_DIR: c.marks },
      );
      cleanups.push(() => x.stop().then(() => undefined));
      return x;
    }
  }, 60_000);

  it('a duplicate completion: the same body again is a replay (200), a different body 409; concurrent duplicates apply once', async () => {
    const c = await cell('dup', { lease: 4 });
    const claim = async () => (await c.api.call('GET', 'inference/pending', { token: 'agent', agentId: 'dup-agent' })).body as { id: string; lease_token: string };
    const id = await c.api.start('fm-dup', ['ok', '0', 'c', 'd']);
    const job = await claim();
    expect(job.id).toBe(id);
    const body = { success: true, lease_token: job.lease_token, seg_instance_id: 'seg-dup', tumor_detected: true, tumor_volume_voxels: 7 };
    const first = await c.api.call('POST', `inference/${id}/complete`, { token: 'agent', body });
    const again = await c.api.call('POST', `inference/${id}/complete`, { token: 'agent', body });
    const other = await c.api.call('POST', `inference/${id}/complete`, { token: 'agent', body: { ...body, tumor_volume_voxels: 8 } });
    expect([first.status, first.body.replay]).toEqual([200, false]);
    expect([again.status, again.body.replay]).toEqual([200, true]);
    expect(other.status).toBe(409);
    const v = await c.api.status('fm-dup');
    expect(v.result).toMatchObject({ tumor_volume_voxels: 7 });
    expect(c.ledger.completions(id)).toBe(1);

    // Two identical completions in flight at once: compare-and-set lets one apply, the other is a replay.
    const id2 = await c.api.start('fm-dup-2', ['ok', '0', 'c', 'd']);
    const job2 = await claim();
    expect(job2.id).toBe(id2);
    const body2 = { success: true, lease_token: job2.lease_token, tumor_detected: false };
    const both = await Promise.all([1, 2].map(() => c.api.call('POST', `inference/${id2}/complete`, { token: 'agent', body: body2 })));
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(both.map((r) => r.body.replay).sort()).toEqual([false, true]);
    expect(c.ledger.completions(id2)).toBe(1);
    expect(c.ledger.count5xx()).toBe(0);
    matrix.push({ cell: 'duplicate completion (same body / other body / concurrent)', outcome: `completed; ${again.status} replay, ${other.status}, concurrent: 1 applied`, attempts: v.attempts, applied: c.ledger.completions(id), runs: '-', seconds: ((Date.now() - c.t0) / 1000).toFixed(1) });
  }, 30_000);

  it('two agents racing for one expired lease: exactly one gets it, the loser gets nothing; the old lease is fenced off', async () => {
    const c = await cell('race', { lease: 2 });
    const claim = async (agentId: string) => (await c.api.call('GET', 'inference/pending', { token: 'agent', agentId })).body as { id: string | null; lease_token: string; attempt: number };
    const rounds = 3;
    const ids: string[] = [];
    for (let i = 0; i < rounds; i++) {
      const id = await c.api.start(`fm-race-${i}`, ['ok', '0', 'c', 'd']);
      ids.push(id);
      const dead = await claim('dead-agent');
      expect(dead.id).toBe(id);
      await sleep(2200); // the dead agent's lease runs out
      const [x, y] = await Promise.all([claim('racer-x'), claim('racer-y')]);
      const winners = [x, y].filter((r) => r.id !== null);
      expect(winners).toHaveLength(1);
      expect([x, y].filter((r) => r.id === null)).toHaveLength(1);
      const w = winners[0]!;
      expect([w.id, w.attempt]).toEqual([id, 2]);
      // The dead agent wakes up: its heartbeat and its result are refused.
      expect((await c.api.call('POST', `inference/${id}/heartbeat`, { token: 'agent', body: { lease_token: dead.lease_token } })).status).toBe(409);
      expect((await c.api.call('POST', `inference/${id}/complete`, { token: 'agent', body: { success: true, lease_token: dead.lease_token } })).status).toBe(409);
      expect((await c.api.call('POST', `inference/${id}/complete`, { token: 'agent', body: { success: true, lease_token: w.lease_token, seg_instance_id: `won-${i}` } })).status).toBe(200);
    }
    for (let i = 0; i < rounds; i++) {
      const v = await c.api.status(`fm-race-${i}`);
      expect([v.status, v.attempts, v.seg_instance_id]).toEqual(['completed', 2, `won-${i}`]);
      expect(c.ledger.completions(ids[i]!)).toBe(1);
    }
    expect(c.ledger.count5xx()).toBe(0);
    matrix.push({ cell: `two agents race for an expired lease (x${rounds})`, outcome: 'completed; 1 winner, loser {id:null}, old lease 409', attempts: 2, applied: 1, runs: '-', seconds: ((Date.now() - c.t0) / 1000).toFixed(1) });
  }, 30_000);

  it('agents that keep dying before confirming a claim (ack=1): three losses are free, the fourth counts; a one-attempt job then fails, not loops', async () => {
    const c = await cell('unacked', { lease: 2 });
    const id = await c.api.start('fm-unacked', ['ok', '0', 'c', 'd'], { max_attempts: 1 });
    const claims: Array<{ id: string | null; attempt?: number }> = [];
    for (let i = 0; i < 5; i++) {
      // As the agent claims (ack=1), then never sends the first heartbeat that would confirm it.
      const r = await c.api.call('GET', 'inference/pending?ack=1', { token: 'agent', agentId: `doomed-${i}` });
      claims.push(r.body as { id: string | null; attempt?: number });
      if (i < 4) await sleep(2300); // the unconfirmed claim's short lease (min(lease, 15 s)) runs out
    }
    expect(claims.map((r) => [r.id, r.attempt ?? null])).toEqual([...Array.from({ length: 4 }, () => [id, 1]), [null, null]]);
    const v = await c.settled('fm-unacked', 10_000);
    expect(v.status).toBe('failed');
    expect(v.error).toMatch(/lease expired on agent doomed-3 .*attempt 1 of 1/);
    expect(c.ledger.completions(id)).toBe(0);
    matrix.push({ cell: 'claims never confirmed, 4 times (max_attempts 1)', outcome: `failed: ${v.error}`, attempts: v.attempts, applied: 0, runs: '-', seconds: ((Date.now() - c.t0) / 1000).toFixed(1) });
  }, 40_000);

  it('an agent that vanishes on the last attempt: the request fails with the lease-expiry reason, not stuck', async () => {
    const c = await cell('last-attempt', { lease: 2 });
    const id = await c.api.start('fm-last', ['ok', '0', 'c', 'd'], { max_attempts: 1 });
    const job = (await c.api.call('GET', 'inference/pending', { token: 'agent', agentId: 'vanishing' })).body as { id: string };
    expect(job.id).toBe(id);
    const v = await c.settled('fm-last', 15_000);
    expect(v.status).toBe('failed');
    expect(v.error).toMatch(/lease expired on agent vanishing \(no heartbeat\) during attempt 1 of 1/);
    expect(c.ledger.completions(id)).toBe(0);
    matrix.push({ cell: 'agent vanishes on its last attempt', outcome: `failed: ${v.error}`, attempts: v.attempts, applied: 0, runs: '-', seconds: ((Date.now() - c.t0) / 1000).toFixed(1) });
  }, 30_000);
});

/** The emulator binary in its own process group, on `port`, optionally seeded from an export. */
async function startEmulator(port: number, importData?: string): Promise<ChildProcess> {
  const args = ['start', '--host=127.0.0.1', `--port=${port}`, ...(importData ? [`--import-data=${importData}`] : [])];
  const child = spawn(EMULATOR_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Firestore emulator exited with ${child.exitCode}: ${err}`);
    try {
      await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
      return child;
    } catch {
      await sleep(200);
    }
  }
  killGroup(child, 'SIGKILL');
  throw new Error(`Firestore emulator did not answer on ${port}: ${err}`);
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the launcher script and its java child
  } catch {
    /* gone */
  }
}

/** A Firestore client for one emulator, whatever FIRESTORE_EMULATOR_HOST (the suite-wide emulator) says. */
function firestoreAt(host: string, projectId: string): Firestore {
  const saved = process.env.FIRESTORE_EMULATOR_HOST;
  // The client prefers the variable over `host`; it is read only while the settings are applied.
  delete process.env.FIRESTORE_EMULATOR_HOST;
  try {
    return new Firestore({ projectId, host, ssl: false });
  } finally {
    if (saved !== undefined) process.env.FIRESTORE_EMULATOR_HOST = saved;
  }
}
