/** The agent's parts on their own: configuration, outbox, delivery, backoff, result parsing, views, job order. */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ClaimedJob, CompleteRequest } from '@lab-relay/protocol';
import { Backoff, parseRetryAfter } from '../../lab-agent/src/backoff.js';
import { SETTINGS, resolveConfig } from '../../lab-agent/src/config.js';
import { deliver, flushOutbox } from '../../lab-agent/src/delivery.js';
import { ApiError, AuthError, ConfigError, NetworkError } from '../../lab-agent/src/errors.js';
import { RunningJob } from '../../lab-agent/src/job-runner.js';
import { createLogger, silentLogger, type LogRecord } from '../../lab-agent/src/log.js';
import { Outbox } from '../../lab-agent/src/outbox.js';
import { parseResult } from '../../lab-agent/src/runners/command.js';
import { PACS_SETTINGS } from '../../lab-agent/src/sinks/pacs-config.js';
import { SOURCE_SETTINGS } from '../../lab-agent/src/sources/config.js';
import { createRunner, onnxRunnerAvailable } from '../../lab-agent/src/runners/registry.js';
import { ttyView } from '../../lab-agent/src/view/tty.js';
import { createAgentLogger } from '../../lab-agent/src/cli/program.js';
import { ROOT, captureIO, removeDir, runCli, tempDir } from './helpers.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('units');
});
afterAll(() => removeDir(dir));

const TOKEN = 'agent-token-0123456789';

describe('configuration', () => {
  it('takes a flag over the environment over the .env file over the default', () => {
    const cwd = join(dir, 'cfg1');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, '.env'), 'GCP_API_URL=http://from-dotenv:1\nINFERENCE_AGENT_TOKEN=dotenv-token-0123456789\nAGENT_SLOTS=3\nPOLL_INTERVAL=30\n');
    const { config, sources } = resolveConfig({ slots: '2' }, { cwd, env: { INFERENCE_API_URL: 'http://from-env:2', AGENT_COMMAND: 'python infer.py' } });
    expect(config.apiUrl).toBe('http://from-env:2');
    expect(sources.apiUrl).toBe('INFERENCE_API_URL');
    expect(config.token).toBe('dotenv-token-0123456789');
    expect(config.slots).toBe(2);
    // The seed's POLL_INTERVAL=30 becomes a long-poll wait, capped at the protocol's 25 s.
    expect(config.pollWait).toBe(25);
    expect(sources.pollWait).toBe('POLL_INTERVAL');
    // A command given means the command runner, unless --runner says otherwise.
    expect(config.runner).toBe('command');
    expect(config.jobTimeout).toBe(3600);
    expect(config.outbox).toMatch(/\.lab-agent[\\/]outbox$/);
  });

  it('accepts the seed alias GCP_API_URL alone', () => {
    const { config } = resolveConfig({}, { cwd: dir, env: { GCP_API_URL: 'https://example.test/api', INFERENCE_AGENT_TOKEN: TOKEN, AGENT_COMMAND: 'x' } });
    expect(config.apiUrl).toBe('https://example.test/api');
  });

  it('reports every bad setting at once, naming the flag and the variable', () => {
    let err: unknown;
    try {
      resolveConfig({ runner: 'gpu', slots: '0', jobTimeout: 'soon', logLevel: 'loud' }, { cwd: dir, env: { INFERENCE_API_URL: 'not a url', INFERENCE_AGENT_TOKEN: 'short' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const m = (err as Error).message;
    expect(m).toMatch(/--api-url \/ INFERENCE_API_URL \/ GCP_API_URL: must be an http\(s\) URL/);
    expect(m).toMatch(/--token \/ INFERENCE_AGENT_TOKEN: must be at least 16 characters/);
    expect(m).toMatch(/--runner \/ AGENT_RUNNER: must be one of onnx, command/);
    expect(m).toMatch(/--slots \/ AGENT_SLOTS: must be at least 1/);
    expect(m).toMatch(/--job-timeout \/ AGENT_JOB_TIMEOUT: job timeout must be a number of seconds/);
    expect(m).toMatch(/--log-level \/ AGENT_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR/);
  });

  it('a missing --env-file is an error; a missing default .env is not', () => {
    expect(() => resolveConfig({ envFile: 'nope.env' }, { cwd: dir, env: {} })).toThrow(/--env-file: .*nope\.env does not exist/);
    expect(() => resolveConfig({ apiUrl: 'http://x', token: TOKEN, command: 'x' }, { cwd: dir, env: {} })).not.toThrow();
  });

  it('`lab-agent run` exits 2 with the message on stderr for config errors and an unknown option', async () => {
    const io = captureIO({});
    expect(await runCli(['run', '--slots', '-3'], io)).toBe(2);
    expect(io.err.join('')).toMatch(/Invalid agent configuration:[\s\S]*--api-url[\s\S]*--slots \/ AGENT_SLOTS: must be at least 1/);
    const io2 = captureIO({});
    expect(await runCli(['run', '--no-such-flag'], io2)).toBe(2);
    expect(io2.err.join('')).toMatch(/unknown option '--no-such-flag'/);
  });

  it('`--runner onnx` fails at start-up with a clear message (exit 2) until it can really run', async () => {
    const args = ['run', '--api-url', 'http://127.0.0.1:9', '--token', TOKEN, '--runner', 'onnx', '--outbox', join(dir, 'onnx-o'), '--work-dir', join(dir, 'onnx-w')];
    if (!onnxRunnerAvailable()) {
      const io = captureIO({});
      expect(await runCli(args, io)).toBe(2);
      expect(io.err.join('')).toMatch(/onnx runner is not part of this build yet[\s\S]*--runner command --command/);
      return;
    }
    // The pipeline's runner exists: it is built with the configured image source...
    const r = await createRunner('onnx', { provider: 'cpu', source: `folder:${dir}`, env: {}, log: () => undefined });
    expect(r.name).toBe('onnx');
    expect(r.source?.name).toBe('folder');
    await expect(createRunner('onnx', { provider: 'cpu', source: 'pacs:somewhere', env: {}, log: () => undefined })).rejects.toThrow(/--source \/ AGENT_SOURCE/);
    // ...and a model that cannot be loaded stops the agent before it claims anything, as a setup error.
    const io = captureIO({});
    expect(await runCli([...args, '--source', `folder:${dir}`, '--model', join(dir, 'no-such-model', 'model.json'), '--log-format', 'json'], io)).toBe(2);
    expect(io.err.join('')).toMatch(/The onnx runner could not start: .*no-such-model/);
  });

  it('the README documents every setting (flag and variable)', () => {
    const readme = readFileSync(join(ROOT, 'lab-agent/README.md'), 'utf8');
    for (const s of [...SETTINGS, ...SOURCE_SETTINGS.filter((x) => x.key !== 'kind'), ...PACS_SETTINGS]) {
      expect(readme).toContain('`' + s.flag + '`');
      for (const e of s.env) expect(readme).toContain('`' + e + '`');
    }
  });
});

describe('outbox', () => {
  const entry = (id: string, token = 'lease-token-abcdef0123'): Parameters<Outbox['put']>[0] => ({
    v: 1,
    request_id: id,
    body: { success: true, lease_token: token, tumor_volume_voxels: 7 },
    written_at: new Date().toISOString(),
  });

  it('writes atomically (no temporary file left, whole JSON on disk) and lists oldest first', async () => {
    const ob = new Outbox(join(dir, 'ob1'));
    await ob.init();
    const f1 = await ob.put(entry('job-1'));
    await new Promise((r) => setTimeout(r, 20));
    const f2 = await ob.put(entry('job-2'));
    const names = readdirSync(ob.dir);
    expect(names.sort()).toEqual([f1, f2].sort());
    expect(JSON.parse(readFileSync(join(ob.dir, f1), 'utf8')).body.lease_token).toBe('lease-token-abcdef0123');
    expect((await ob.list()).map((i) => i.entry.request_id)).toEqual(['job-1', 'job-2']);
  });

  it('drops the leftovers of a crash mid-write and moves unreadable entries aside', async () => {
    const ob = new Outbox(join(dir, 'ob2'));
    mkdirSync(ob.dir, { recursive: true });
    writeFileSync(join(ob.dir, '.tmp-deadbeef'), '{"v":1,"request_id":"half');
    writeFileSync(join(ob.dir, 'broken.x.result.json'), 'not json');
    await ob.init();
    const bad: string[] = [];
    expect(await ob.list((f) => bad.push(f))).toEqual([]);
    expect(bad).toEqual(['broken.x.result.json']);
    expect(readdirSync(ob.dir).sort()).toEqual(['rejected']);
    expect(readdirSync(join(ob.dir, 'rejected')).sort()).toEqual(['broken.x.result.json', 'broken.x.result.json.reason.txt']);
  });

  function fakeClient(answers: Array<Error | { status: 'completed' | 'failed' | 'pending'; replay: boolean }>) {
    const calls: Array<{ id: string; body: CompleteRequest }> = [];
    return {
      calls,
      async complete(id: string, body: CompleteRequest) {
        calls.push({ id, body });
        const a = answers.shift();
        if (!a) throw new Error('unexpected call');
        if (a instanceof Error) throw a;
        return { success: true as const, ...a };
      },
    };
  }

  it('at start-up flushes every entry: 2xx and final 404/409 remove it, errors are retried with the same body', async () => {
    const ob = new Outbox(join(dir, 'ob3'));
    await ob.init();
    await ob.put(entry('a'));
    await ob.put(entry('b'));
    await ob.put(entry('c'));
    const client = fakeClient([
      new NetworkError('ECONNREFUSED'),
      new ApiError(503, 'store down', 0),
      { status: 'completed', replay: false },
      new ApiError(409, 'lease is no longer held'),
      new ApiError(404, 'Request not found'),
    ]);
    const lines: LogRecord[] = [];
    const log = createLogger({ view: { write: (r) => lines.push(r) }, level: 'DEBUG' });
    const r = await flushOutbox({ client, outbox: ob, log, maxBackoffMs: 20, baseBackoffMs: 1 }, new AbortController().signal);
    expect(r).toEqual({ delivered: 1, refused: 2, left: 0 });
    expect(client.calls.map((c) => c.id)).toEqual(['a', 'a', 'a', 'b', 'c']);
    expect(new Set(client.calls.slice(0, 3).map((c) => JSON.stringify(c.body))).size).toBe(1);
    expect(readdirSync(ob.dir).filter((f) => f.endsWith('.json'))).toEqual([]);
    expect(lines.filter((l) => l.fields.event === 'refused').map((l) => l.fields.status)).toEqual([409, 404]);
  });

  it('keeps the entry when stopped or when the token is refused; moves a 400 aside', async () => {
    const ob = new Outbox(join(dir, 'ob4'));
    await ob.init();
    const file = await ob.put(entry('s'));
    const ac = new AbortController();
    const stopping = deliver({ file, entry: entry('s') }, { client: fakeClient([new NetworkError('down'), new NetworkError('down'), new NetworkError('down')]), outbox: ob, log: silentLogger, maxBackoffMs: 50, baseBackoffMs: 40 }, ac.signal);
    setTimeout(() => ac.abort(), 30);
    expect(await stopping).toBe('stopped');
    expect(await ob.has(file)).toBe(true);
    await expect(deliver({ file, entry: entry('s') }, { client: fakeClient([new AuthError(401, 'refused')]), outbox: ob, log: silentLogger, maxBackoffMs: 10 }, new AbortController().signal)).rejects.toBeInstanceOf(AuthError);
    expect(await ob.has(file)).toBe(true);
    expect(await deliver({ file, entry: entry('s') }, { client: fakeClient([new ApiError(400, 'invalid body')]), outbox: ob, log: silentLogger, maxBackoffMs: 10 }, new AbortController().signal)).toBe('rejected');
    expect(await ob.has(file)).toBe(false);
    expect(readdirSync(join(ob.dir, 'rejected'))).toContain(file);
  });
});

describe('backoff', () => {
  it('grows exponentially with jitter, caps, resets, and lets Retry-After win', () => {
    const b = new Backoff({ baseMs: 100, capMs: 1000, random: () => 1 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000, 1000]);
    const low = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0 });
    expect([low.next(), low.next()]).toEqual([50, 100]);
    b.reset();
    expect(b.next()).toBe(100);
    expect(b.next(7000)).toBe(7000);
    expect(parseRetryAfter('5')).toBe(5000);
    expect(parseRetryAfter(new Date(Date.now() + 3000).toUTCString())).toBeGreaterThan(1000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('command runner output', () => {
  it('takes the whole stdout or its last line as the result, and refuses anything else clearly', () => {
    expect(parseResult('{"tumor_detected":false}')).toEqual({ success: true, tumor_detected: false });
    expect(parseResult('loading...\n{"success":false,"error":"no brain","retryable":false}\n')).toMatchObject({ success: false, error: 'no brain' });
    expect(() => parseResult('')).toThrow(/printed nothing on stdout/);
    expect(() => parseResult('done!')).toThrow(/not a valid result \(it is not JSON\): "done!"/);
    expect(() => parseResult('[1,2]')).toThrow(/not a JSON object/);
    expect(() => parseResult('{"tumor_volume_voxels":-4}')).toThrow(/not a valid result: tumor_volume_voxels/);
  });
});

describe('views', () => {
  it('--log-format auto: readable lines on a terminal, JSON lines otherwise', () => {
    const cfg = { logFormat: 'auto' as const, logLevel: 'INFO' as const, token: TOKEN, agentId: 'lab-pc-1' };
    const tty: string[] = [];
    createAgentLogger(cfg, { isTTY: true, stdout: (t) => tty.push(t) }).log('INFO', 'waiting for jobs', { event: 'ready' });
    expect(tty[0]).toMatch(/^\d\d:\d\d:\d\d waiting for jobs/);
    const pipe: string[] = [];
    createAgentLogger(cfg, { isTTY: false, stdout: (t) => pipe.push(t) }).child({ job_id: 'j1' }).log('WARNING', 'slow', { event: 'x' });
    expect(JSON.parse(pipe[0]!)).toMatchObject({ severity: 'WARNING', message: 'slow', agent_id: 'lab-pc-1', job_id: 'j1', event: 'x' });
    expect(typeof JSON.parse(pipe[0]!).time).toBe('string');
  });

  it('the terminal view shows a progress bar per job and readable lines; the logger redacts the token', () => {
    const out: string[] = [];
    const log = createLogger({ view: ttyView((l) => out.push(l), false), secrets: [TOKEN] });
    log.log('INFO', 'progress', { job_id: 'abcdef0123456789', event: 'progress', stage: 'infer', percent: 40 });
    log.log('WARNING', `bad token ${TOKEN}`, { job_id: 'abcdef0123456789', header: `Bearer ${TOKEN}` });
    expect(out[0]).toMatch(/^\d\d:\d\d:\d\d job 23456789 \[########------------\]  40%  infer$/);
    expect(out[1]).toMatch(/WARNING job 23456789 bad token \[redacted\]  header=Bearer \[redacted\]/);
    expect(out.join('')).not.toContain(TOKEN);
  });
});

describe('one job', () => {
  it('sends the first heartbeat before the runner starts, keeps heartbeats going, and completes once', async () => {
    const order: string[] = [];
    const job: ClaimedJob = {
      id: 'job-order',
      series_id: 's',
      series_ids: ['1', '2', '3', '4'],
      lease_token: 'lease-token-0123456789',
      lease_expires_at: new Date(Date.now() + 60_000).toISOString(),
      heartbeat_interval_s: 0.05,
      attempt: 1,
      max_attempts: 3,
      priority: 0,
    };
    const client = {
      async heartbeat(_id: string, body: { progress?: { stage: string } }) {
        order.push(`heartbeat:${body.progress?.stage}`);
        return { success: true as const, cancel: false, lease_expires_at: new Date(Date.now() + 60_000).toISOString(), heartbeat_interval_s: 0.05 };
      },
      async complete(_id: string, body: CompleteRequest) {
        order.push(`complete:${body.success}:${body.lease_token}`);
        return { success: true as const, status: 'completed' as const, replay: false };
      },
    };
    const runner = {
      name: 'fake',
      async run(ctx: { progress(s: string, p: number): void }) {
        order.push('run');
        ctx.progress('infer', 50);
        await new Promise((r) => setTimeout(r, 200));
        return { success: true, tumor_detected: true };
      },
    };
    const ob = new Outbox(join(dir, 'ob-order'));
    await ob.init();
    const rj = new RunningJob(job, { client, runner, outbox: ob, log: silentLogger, agentId: 'a', workRoot: join(dir, 'work-order'), jobTimeoutMs: 0, maxBackoffMs: 100, deliverySignal: new AbortController().signal, onAuthError: () => undefined });
    expect(await rj.done).toBe('delivered');
    expect(order[0]).toBe('heartbeat:claimed');
    expect(order[1]).toBe('run');
    expect(order).toContain('heartbeat:infer');
    expect(order.filter((o) => o.startsWith('complete'))).toEqual(['complete:true:lease-token-0123456789']);
    expect(readdirSync(join(dir, 'work-order'))).toEqual([]);
  });

  it('still hands the result over when the outbox cannot be written (and says so)', async () => {
    const sent: CompleteRequest[] = [];
    const job: ClaimedJob = {
      id: 'job-no-outbox',
      series_id: 's',
      series_ids: ['1', '2', '3', '4'],
      lease_token: 'lease-token-0123456789',
      lease_expires_at: new Date(Date.now() + 60_000).toISOString(),
      heartbeat_interval_s: 10,
      attempt: 1,
      max_attempts: 3,
      priority: 0,
    };
    const client = {
      heartbeat: async () => ({ success: true as const, cancel: false, lease_expires_at: new Date(Date.now() + 60_000).toISOString(), heartbeat_interval_s: 10 }),
      complete: async (_id: string, body: CompleteRequest) => {
        sent.push(body);
        return { success: true as const, status: 'completed' as const, replay: false };
      },
    };
    writeFileSync(join(dir, 'not-a-folder'), 'x');
    const lines: LogRecord[] = [];
    const rj = new RunningJob(job, {
      client,
      runner: { name: 'fake', run: async () => ({ success: true }) },
      outbox: new Outbox(join(dir, 'not-a-folder')),
      log: createLogger({ view: { write: (r) => lines.push(r) } }),
      agentId: 'a',
      workRoot: join(dir, 'work-no-outbox'),
      jobTimeoutMs: 0,
      maxBackoffMs: 100,
      deliverySignal: new AbortController().signal,
      onAuthError: () => undefined,
    });
    expect(await rj.done).toBe('delivered');
    expect(sent).toHaveLength(1);
    expect(lines.some((l) => l.severity === 'ERROR' && /could not write the result to the outbox/.test(l.message))).toBe(true);
  });

  it('reports a retryable failure when the work folder cannot be created, and stops heartbeating', async () => {
    const sent: CompleteRequest[] = [];
    let beats = 0;
    const job: ClaimedJob = {
      id: 'job-no-workdir',
      series_id: 's',
      series_ids: ['1', '2', '3', '4'],
      lease_token: 'lease-token-0123456789',
      lease_expires_at: new Date(Date.now() + 60_000).toISOString(),
      heartbeat_interval_s: 0.02,
      attempt: 1,
      max_attempts: 3,
      priority: 0,
    };
    const client = {
      heartbeat: async () => {
        beats++;
        return { success: true as const, cancel: false, lease_expires_at: new Date(Date.now() + 60_000).toISOString(), heartbeat_interval_s: 0.02 };
      },
      complete: async (_id: string, body: CompleteRequest) => {
        sent.push(body);
        return { success: true as const, status: 'pending' as const, replay: false };
      },
    };
    writeFileSync(join(dir, 'file-not-folder'), 'x');
    const ob = new Outbox(join(dir, 'ob-no-workdir'));
    await ob.init();
    const rj = new RunningJob(job, {
      client,
      runner: { name: 'fake', run: async () => ({ success: true }) },
      outbox: ob,
      log: silentLogger,
      agentId: 'a',
      workRoot: join(dir, 'file-not-folder', 'work'),
      jobTimeoutMs: 0,
      maxBackoffMs: 100,
      deliverySignal: new AbortController().signal,
      onAuthError: () => undefined,
    });
    expect(await rj.done).toBe('delivered');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ success: false, retryable: true });
    expect(sent[0]!.error).toMatch(/could not create the job's work folder/);
    const after = beats;
    await new Promise((r) => setTimeout(r, 100));
    expect(beats).toBe(after);
  });
});
