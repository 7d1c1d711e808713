/**
 * `lab-agent` as a real process: killed with SIGKILL mid-job, stopped with SIGTERM (once, twice), and
 * its exit codes for help and bad configuration.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { AGENT_TOKEN, FIXTURE, ROOT, exited, linesEventually, track, removeDir, spawnAgent, startAgent, startApi, tempDir, waitFor, type InProcessAgent, type TestApi } from './helpers.js';

let api: TestApi;
let dir: string;
const children: ChildProcess[] = [];
const inProcess: InProcessAgent[] = [];

beforeAll(() => {
  dir = tempDir('process');
});
beforeEach(async () => {
  api = await startApi({ leaseSeconds: 2 });
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(inProcess.splice(0).map((a) => a.stop()));
  await api.stop();
});
afterAll(() => removeDir(dir));

function runArgs(name: string, extra: string[] = []): string[] {
  return ['run', '--api-url', api.url, '--command', `node "${FIXTURE}" auto`, '--outbox', join(dir, name, 'outbox'), '--work-dir', join(dir, name, 'work'), '--poll-wait', '2', '--agent-id', name, ...extra];
}

function child(name: string, extra: string[] = []) {
  const c = spawnAgent(runArgs(name, extra), { INFERENCE_AGENT_TOKEN: AGENT_TOKEN, MARK_DIR: dir });
  children.push(c);
  return c;
}

const starts = (id: string) => (existsSync(join(dir, `${id}.start`)) ? readFileSync(join(dir, `${id}.start`), 'utf8').trim().split('\n') : []);

describe('lab-agent as a process', () => {
  it('a job whose agent was SIGKILLed is completed by another agent after the lease runs out, exactly once', async () => {
    const a = child('killed-agent');
    await waitFor('agent A ready', () => a.lines.some((l) => l.event === 'ready'), 20_000);
    const id = await api.start('sigkill-1', ['ok', '1500', 'c', 'd']);
    await waitFor('agent A started the program', () => starts(id).length === 1);
    a.kill('SIGKILL');
    await exited(a);
    const b = await startAgent(
      { apiUrl: api.url, command: `node "${FIXTURE}" auto`, outbox: join(dir, 'b', 'outbox'), workDir: join(dir, 'b', 'work'), pollWait: '2', agentId: 'rescuer' },
      { MARK_DIR: dir },
    );
    inProcess.push(b);
    const done = await waitFor('completed by agent B', async () => {
      const s = await api.status('sigkill-1');
      return s.status === 'completed' ? s : null;
    }, 25_000);
    expect(done.agent_id).toBe('rescuer');
    expect(done.attempts).toBe(2);
    expect(starts(id)).toHaveLength(2);
    expect(await linesEventually(b.lines, (l) => l.job_id === id && l.event === 'delivered', 1)).toHaveLength(1);
    expect(b.lines.find((l) => l.event === 'claimed')?.attempt).toBe(2);
  }, 45_000);

  it('first SIGTERM: no more claims, the running job gets the grace period, then is reported as a retryable failure; exit 0', async () => {
    const a = child('graceful', ['--grace-period', '1']);
    await waitFor('agent ready', () => a.lines.some((l) => l.event === 'ready'), 20_000);
    const id = await api.start('sigterm-1', ['hang', '0', 'c', 'd'], { max_attempts: 1 });
    await waitFor('program started', () => starts(id).length === 1);
    a.kill('SIGTERM');
    const { code } = await exited(a, 20_000);
    expect(code).toBe(0);
    const s = await api.status('sigterm-1');
    expect(s.status).toBe('failed');
    expect(s.error).toMatch(/shut down before the job finished/);
    expect((s.result as { retryable?: boolean }).retryable).toBe(true);
    expect(a.lines.some((l) => l.event === 'grace-over')).toBe(true);
  }, 45_000);

  it('second SIGTERM: exits at once (130) and leaves the lease to expire', async () => {
    const a = child('forced', ['--grace-period', '60']);
    await waitFor('agent ready', () => a.lines.some((l) => l.event === 'ready'), 20_000);
    const id = await api.start('sigterm-2', ['hang', '0', 'c', 'd']);
    await waitFor('program started', () => starts(id).length === 1);
    a.kill('SIGTERM');
    await waitFor('first signal seen', () => a.lines.some((l) => l.event === 'stopping'));
    a.kill('SIGTERM');
    const { code } = await exited(a, 5000);
    expect(code).toBe(130);
    expect((await api.status('sigterm-2')).status).toBe('processing');
  }, 45_000);

  it('exits 2 with a readable message on bad configuration, and 0 on --help (through the bin shim)', async () => {
    const bad = spawnAgent(['run', '--slots', 'lots', '--runner', 'command'], { INFERENCE_API_URL: 'ftp://example' });
    children.push(bad);
    expect((await exited(bad)).code).toBe(2);
    const text = bad.output();
    expect(text).toMatch(/Invalid agent configuration/);
    expect(text).toMatch(/--api-url \/ INFERENCE_API_URL \/ GCP_API_URL: must be an http\(s\) URL/);
    expect(text).toMatch(/--token \/ INFERENCE_AGENT_TOKEN: is required/);
    expect(text).toMatch(/--slots \/ AGENT_SLOTS: must be a whole number/);
    expect(text).toMatch(/--command \/ AGENT_COMMAND: the command runner needs a command/);

    const { spawn } = await import('node:child_process');
    const help = spawn(process.execPath, [join(ROOT, 'lab-agent/bin/lab-agent.js'), 'run', '--help'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    track(help);
    children.push(help);
    let out = '';
    help.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    expect((await exited(help)).code).toBe(0);
    expect(out).toMatch(/--api-url <url>/);
    expect(out.replace(/\s+/g, ' ')).toMatch(/env: INFERENCE_API_URL, GCP_API_URL/);
    expect(out).toMatch(/--job-timeout <s>/);
  }, 45_000);
});
