/**
 * The agent against the real job API on loopback (SQLite store), in this process, with the command
 * runner driving test/agent/fixtures/job.mjs.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { AGENT_TOKEN, FIXTURE, alive, captureIO, linesEventually, removeDir, runCli, startAgent, startApi, tempDir, waitFor, type InProcessAgent, type TestApi } from './helpers.js';

let api: TestApi;
let dir: string;
const agents: InProcessAgent[] = [];

beforeAll(() => {
  dir = tempDir('agent');
});

// A fresh API per test: a stopped agent's aborted long-poll can still claim a job queued in the
// next instant (see the report on JobService.claim), which must not leak from one test into another.
beforeEach(async () => {
  api = await startApi({ leaseSeconds: 4 });
});

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await api.stop();
});

afterAll(() => {
  removeDir(dir);
});

let n = 0;
/** A fresh folder set per agent, and the command driven by the job's series ids. */
async function agent(extra: Record<string, string> = {}) {
  const d = join(dir, `a${++n}`);
  const a = await startAgent({
    apiUrl: api.url,
    command: `node "${FIXTURE}" auto`,
    outbox: join(d, 'outbox'),
    workDir: join(d, 'work'),
    pollWait: '2',
    maxBackoff: '1',
    agentId: `test-agent-${n}`,
    ...extra,
  }, { MARK_DIR: marks() });
  agents.push(a);
  return { ...a, outbox: join(d, 'outbox'), workDir: join(d, 'work') };
}

function marks(): string {
  return dir;
}

function startMark(id: string): Array<{ at: number; pid: number; workDir: string }> {
  const f = join(dir, `${id}.start`);
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const [at, pid, workDir] = l.split(' ');
      return { at: Number(at), pid: Number(pid), workDir: workDir! };
    });
}

const terminal = (s: string) => s === 'completed' || s === 'failed' || s === 'cancelled';

describe('lab agent with the command runner', () => {
  it('claims a job, reports progress through heartbeats, and delivers the result once', async () => {
    const a = await agent();
    const id = await api.start('happy-1', ['ok', '2000', 'c', 'd']);
    // Progress from the program's stderr reaches the API with a heartbeat while the job runs.
    const running = await waitFor('progress from the program in the status', async () => {
      const s = await api.status('happy-1');
      return s.progress?.stage === 'infer' ? s : null;
    });
    expect(running.status).toBe('processing');
    const done = await waitFor('completion', async () => {
      const s = await api.status('happy-1');
      return terminal(s.status) ? s : null;
    });
    expect(done.status).toBe('completed');
    expect(done.attempts).toBe(1);
    expect(done.seg_instance_id).toBe('seg-happy-1');
    expect(done.result).toMatchObject({ tumor_detected: true, tumor_volume_voxels: 1234, inputs: ['ok', '2000', 'c', 'd'] });
    expect(startMark(id)).toHaveLength(1);
    // The work folder is gone, the outbox is empty, and the program's stderr is in the agent's log.
    expect(existsSync(startMark(id)[0]!.workDir)).toBe(false);
    await waitFor('outbox emptied', () => readdirSync(a.outbox).filter((f) => f.endsWith('.json')).length === 0);
    expect(await linesEventually(a.lines, (l) => l.job_id === id && l.event === 'delivered', 1)).toHaveLength(1);
    const jobLines = a.lines.filter((l) => l.job_id === id);
    expect(jobLines.some((l) => l.stream === 'stderr' && /loading series ok,2000,c,d/.test(l.message))).toBe(true);
    expect(JSON.stringify(a.lines)).not.toContain('agent-token-0123456789');
  }, 30_000);

  it('uploads the output files through the signed URLs and the status hands out their downloads', async () => {
    const a = await agent();
    const id = await api.start('with-outputs', ['outputs', '0', 'c', 'd']);
    const st = await waitFor('completed', async () => {
      const s = await api.status('with-outputs');
      return s.status === 'completed' ? s : null;
    });
    expect(st.request_id).toBe(id);
    expect(st.result).not.toHaveProperty('artifacts');
    expect(st.result!.outputs).toMatchObject({ seg: { object: `requests/${id}/1/seg.dcm`, bytes: 'segmentation of with-outputs'.length, content_type: 'application/dicom' } });
    const seg = await fetch(st.downloads!.seg!.url);
    expect(await seg.text()).toBe('segmentation of with-outputs');
    const png = await fetch(st.downloads!.preview!.url);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(a.lines.some((l) => l.job_id === id && l.event === 'delivered')).toBe(true);
  });

  it('fails a job whose result the API refuses, with the reason, instead of leaving it to its lease', async () => {
    await agent();
    await api.start('huge-result', ['huge', '0', 'c', 'd']);
    const st = await waitFor('failed', async () => {
      const s = await api.status('huge-result');
      return s.status === 'failed' ? s : null;
    });
    expect(st.error).toMatch(/the API refused the result: .*larger than 512 KiB/);
    expect(st.attempts).toBe(1);
  });

  it('runs two jobs at once with --slots 2', async () => {
    await agent({ slots: '2' });
    const [x, y] = [await api.start('slots-1', ['ok', '2000', 'c', 'd']), await api.start('slots-2', ['ok', '2000', 'c', 'd'])];
    for (const s of ['slots-1', 'slots-2']) {
      await waitFor(`${s} completed`, async () => (await api.status(s)).status === 'completed', 20_000);
    }
    const end = (id: string) => Number(readFileSync(join(dir, `${id}.end`), 'utf8'));
    const [sx, sy] = [startMark(x)[0]!.at, startMark(y)[0]!.at];
    // Overlapping intervals: each started before the other ended.
    expect(sx).toBeLessThan(end(y));
    expect(sy).toBeLessThan(end(x));
  }, 30_000);

  it('turns a failing, hanging, garbage-printing or crashing program into a failed job with a clear error', async () => {
    const a = await agent({ slots: '5', jobTimeout: '2' });
    const cases = {
      'bad-fail': ['fail', '0', 'c', 'd'],
      'bad-hang': ['hang', '0', 'c', 'd'],
      'bad-garbage': ['garbage', '0', 'c', 'd'],
      'bad-crash': ['crash', '0', 'c', 'd'],
      'bad-tempfail': ['tempfail', '0', 'c', 'd'],
    };
    const ids: Record<string, string> = {};
    for (const [series, inputs] of Object.entries(cases)) ids[series] = await api.start(series, inputs, { max_attempts: 1 });
    const views = Object.fromEntries(
      await Promise.all(
        Object.keys(cases).map(async (s) => [s, await waitFor(`${s} failed`, async () => ((await api.status(s)).status === 'failed' ? api.status(s) : null), 20_000)] as const),
      ),
    );
    const r = (s: string) => views[s]!.result as { retryable?: boolean; error?: string };
    expect(views['bad-fail']!.error).toMatch(/exited with code 3.*CUDA out of memory/);
    expect(r('bad-fail').retryable).toBe(false);
    expect(views['bad-hang']!.error).toMatch(/job timeout \(2 s\)/);
    expect(r('bad-hang').retryable).toBe(true);
    expect(views['bad-garbage']!.error).toMatch(/not a valid result.*Segmentation done/);
    expect(r('bad-garbage').retryable).toBe(false);
    expect(views['bad-crash']!.error).toMatch(/SIGKILL.*crash/);
    expect(r('bad-crash').retryable).toBe(true);
    expect(r('bad-tempfail').retryable).toBe(true);
    // The hanging program was killed and its work folder removed.
    const hang = startMark(ids['bad-hang']!)[0]!;
    await waitFor('hanging program killed', () => !alive(hang.pid), 8000);
    expect(existsSync(hang.workDir)).toBe(false);
    expect(await linesEventually(a.lines, (l) => l.event === 'delivered', 5)).toHaveLength(5);
  }, 40_000);

  it('stops a cancelled job at its next heartbeat, removes its files, reports nothing, and goes on', async () => {
    const a = await agent();
    const id = await api.start('cancel-1', ['hang', '0', 'c', 'd']);
    const mark = await waitFor('program started', () => startMark(id)[0]);
    expect(existsSync(join(mark.workDir, 'scratch.bin'))).toBe(true);
    await api.cancel(id);
    await waitFor('program killed', () => !alive(mark.pid), 8000);
    await waitFor('work folder removed', () => !existsSync(mark.workDir), 5000);
    const jobLines = a.lines.filter((l) => l.job_id === id);
    expect(jobLines.some((l) => l.event === 'cancel')).toBe(true);
    expect(jobLines.some((l) => l.event === 'delivered' || l.event === 'refused')).toBe(false);
    expect((await api.status('cancel-1')).status).toBe('cancelled');
    // The slot is free again.
    await api.start('cancel-2', ['ok', '0', 'c', 'd']);
    await waitFor('next job completed', async () => (await api.status('cancel-2')).status === 'completed');
  }, 30_000);

  it('keeps a result made while the API is down in the outbox and delivers it once the API is back', async () => {
    await api.stop();
    const db = join(dir, 'outage.sqlite');
    api = await startApi({ leaseSeconds: 4, sqlitePath: db });
    const port = api.port;
    const a = await agent();
    const id = await api.start('outage-1', ['ok', '1500', 'c', 'd']);
    await waitFor('program started', () => startMark(id)[0]);
    await api.stop();
    // The job finishes with the API gone: its result must be on disk, and sending it retried.
    const file = await waitFor('result in the outbox', () => readdirSync(a.outbox).find((f) => f.endsWith('.result.json')), 10_000);
    const entry = JSON.parse(readFileSync(join(a.outbox, file), 'utf8')) as { request_id: string; body: Record<string, unknown> };
    expect(entry.request_id).toBe(id);
    expect(entry.body).toMatchObject({ success: true, seg_instance_id: 'seg-outage-1' });
    expect(typeof entry.body.lease_token).toBe('string');
    await waitFor('a failed delivery', () => a.lines.some((l) => l.job_id === id && l.event === 'delivery-retry'), 10_000);
    api = await startApi({ leaseSeconds: 4, sqlitePath: db, port });
    const done = await waitFor('completion after the API came back', async () => {
      const s = await api.status('outage-1');
      return s.status === 'completed' ? s : null;
    }, 15_000);
    expect(done.attempts).toBe(1);
    expect(done.seg_instance_id).toBe('seg-outage-1');
    await waitFor('outbox emptied', () => readdirSync(a.outbox).filter((f) => f.endsWith('.json')).length === 0);
    const delivered = await linesEventually(a.lines, (l) => l.job_id === id && l.event === 'delivered', 1);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.replay).toBe(false);
    expect(startMark(id)).toHaveLength(1);
  }, 40_000);

  it('stops with exit code 3 and a clear message when the API refuses the token (401), never printing it', async () => {
    const io = captureIO();
    const d = join(dir, 'auth');
    const code = await runCli(
      ['run', '--api-url', api.url, '--token', 'wrong-token-0123456789', '--command', `node "${FIXTURE}" auto`, '--outbox', join(d, 'o'), '--work-dir', join(d, 'w'), '--log-format', 'json'],
      io,
    );
    expect(code).toBe(3);
    const text = io.out.join('') + io.err.join('');
    expect(text).toMatch(/refused the agent token \(401/);
    expect(text).toMatch(/INFERENCE_AGENT_TOKEN/);
    expect(text).not.toContain('wrong-token-0123456789');
    expect(text).not.toContain(AGENT_TOKEN);
  }, 20_000);
});
