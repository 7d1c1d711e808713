/** @jest-environment ./test/model/ort-environment.cjs */
/**
 * Secrets never reach a log or an error text (issue 7). Whole jobs run through the real API (its JSON log
 * captured at DEBUG) and the real agent (onnx runner, Orthanc source with HTTP Basic credentials, SEG
 * stored back in Orthanc), including the failure paths where a secret is most likely to be echoed:
 * a wrong API token (401, the agent stops with exit 3), calls with a stale or finished lease (409), a
 * wrong source password and a wrong PACS password (Orthanc answers 401). Then neither the agent token, the
 * client token, the wrong tokens, any lease token, the upload/download signatures, nor the source/PACS
 * passwords (raw or as a Basic header) appear in any log line, any job error or any API answer.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Agent } from '../../lab-agent/src/agent.js';
import { prepareRun, runCli } from '../../lab-agent/src/cli/program.js';
import type { Flags } from '../../lab-agent/src/config.js';
import { captureIO, waitFor, type LogLine } from '../agent/helpers.js';
import { AGENT_TOKEN, CLIENT_TOKEN, startTestApi, type TestApi } from '../harness/api-server.js';
import { hasOrthanc, startOrthanc, uploadStudy, warnIfNoOrthanc, type OrthancServer, type UploadedSeries } from '../harness/orthanc.js';
import { tempDir } from '../imaging/helpers.js';
import { fixtureManifest, writeManifest } from '../model/helpers.js';
import { synthesizePhantom } from '../../lab-agent/src/phantom/synthesize.js';
import { writePhantomStudy } from '../../lab-agent/src/phantom/write-study.js';

warnIfNoOrthanc('security: secrets in logs (Orthanc source with credentials)');
const d = hasOrthanc ? describe : describe.skip;

const PACS_PASSWORD = 'pacs-Secret-Pw-7f3a9c';
const WRONG_SOURCE_PASSWORD = 'wrong-Source-Pw-51be02';
const WRONG_PACS_PASSWORD = 'wrong-Pacs-Pw-c0ffee42';
const WRONG_AGENT_TOKEN = 'wrong-agent-token-9d8c7b6a5f4e';
const WRONG_CLIENT_TOKEN = 'wrong-client-token-1a2b3c4d5e6f';
const STALE_LEASE = 'stale-lease-token-00112233445566';
const MODS = ['t1', 't1c', 't2', 'flair'] as const;

interface RunningAgent {
  name: string;
  agent: Agent;
  done: Promise<number>;
  io: ReturnType<typeof captureIO>;
}

d('secrets stay out of logs and error texts', () => {
  const tmp = tempDir('secrets');
  const apiLines: string[] = [];
  const agents: RunningAgent[] = [];
  let api: TestApi;
  let orthanc: OrthancServer;
  let series: Record<string, UploadedSeries>;
  let manifest: string;
  const views: unknown[] = [];

  beforeAll(async () => {
    await writePhantomStudy(synthesizePhantom({ seed: 9, size: [24, 24, 12] }), path.join(tmp.dir, 'study'));
    orthanc = await startOrthanc({ password: PACS_PASSWORD });
    series = await uploadStudy(orthanc, path.join(tmp.dir, 'study'));
    manifest = await writeManifest(fixtureManifest());
    api = await startTestApi({ lines: apiLines, env: { LEASE_SECONDS: '20', MAX_ATTEMPTS: '1' } });
  }, 90_000);

  afterAll(async () => {
    for (const a of agents) {
      a.agent.stop();
      await a.done.catch(() => undefined);
    }
    await api?.close();
    await orthanc?.stop();
    if (manifest) await fsp.rm(path.dirname(manifest), { recursive: true, force: true });
    tmp.cleanup();
  });

  /** The agent as `lab-agent run` builds it (JSON logs at DEBUG, every stdout/stderr byte kept). */
  async function runAgent(name: string, flags: Flags, env: Record<string, string>): Promise<RunningAgent> {
    const io = captureIO(env);
    const { agent } = await prepareRun(
      {
        apiUrl: api.url,
        token: AGENT_TOKEN,
        runner: 'onnx',
        source: `orthanc:${orthanc.url}`,
        model: manifest,
        outbox: path.join(tmp.dir, `outbox-${name}`),
        workDir: path.join(tmp.dir, `work-${name}`),
        pollWait: '1',
        maxBackoff: '1',
        agentId: `secrets-${name}`,
        logFormat: 'json',
        logLevel: 'DEBUG',
        ...flags,
      },
      io,
    );
    const a = { name, agent, done: agent.run(), io };
    agents.push(a);
    return a;
  }

  async function stop(a: RunningAgent): Promise<number> {
    a.agent.stop();
    const code = await a.done;
    // A job queued in the same instant as a stop can still be claimed by the stopped agent's last long-poll
    // (the API has not yet seen its connection close) and then waits for the lease: let that poll (1 s) end.
    await new Promise((r) => setTimeout(r, 1500));
    return code;
  }

  async function runJob(seriesId: string, a: RunningAgent): Promise<Record<string, any>> {
    const ids = MODS.map((m) => series[m]!.id);
    expect((await api.call('POST', `/api/inference/${seriesId}/start`, { body: { series_ids: ids } })).status).toBe(202);
    const view = await waitFor(`job ${seriesId} to end`, async () => {
      const s = (await api.call('GET', `/api/inference/${seriesId}/status`)).body;
      return s.status === 'completed' || s.status === 'failed' ? s : null;
    }, 90_000, 250);
    views.push(view);
    if (process.env.SECRETS_DEBUG) console.log(JSON.stringify(view), a.io.lines.map((l) => `${l.time} ${l.severity} ${l.event ?? ''} ${l.message}`).join('\n'));
    // The agent logs its acknowledgement a moment after the API has the result.
    await waitFor(`${seriesId}: the agent's delivery line`, () => a.io.lines.some((l: LogLine) => l.event === 'delivered' && l.job_id === view.request_id), 15_000);
    return view;
  }

  const credentials = { AGENT_SOURCE_USER: 'lab', AGENT_PACS: 'orthanc', AGENT_PACS_USER: 'lab' };

  it('a job through the source and PACS with credentials completes', async () => {
    const a = await runAgent('ok', {}, { ...credentials, AGENT_SOURCE_PASSWORD: PACS_PASSWORD, AGENT_PACS_PASSWORD: PACS_PASSWORD });
    const v = await runJob('sec-ok', a);
    expect([v.status, v.error ?? null]).toEqual(['completed', null]);
    expect(v.seg_instance_id).toBeTruthy();
    expect(await stop(a)).toBe(0);
  }, 120_000);

  it('a wrong source password fails the job with a reason', async () => {
    const a = await runAgent('bad-source', {}, { ...credentials, AGENT_SOURCE_PASSWORD: WRONG_SOURCE_PASSWORD, AGENT_PACS_PASSWORD: PACS_PASSWORD });
    const v = await runJob('sec-bad-source', a);
    expect(v.status).toBe('failed');
    expect(v.error).toMatch(/credentials|401/);
    await stop(a);
  }, 120_000);

  it('a wrong PACS password fails the job with a reason after inference', async () => {
    const a = await runAgent('bad-pacs', {}, { ...credentials, AGENT_SOURCE_PASSWORD: PACS_PASSWORD, AGENT_PACS_PASSWORD: WRONG_PACS_PASSWORD });
    const v = await runJob('sec-bad-pacs', a);
    expect(v.status).toBe('failed');
    expect(v.error).toMatch(/credentials|401/);
    await stop(a);
  }, 120_000);

  it('a wrong API token stops the agent with exit 3', async () => {
    const a = await runAgent('bad-token', { token: WRONG_AGENT_TOKEN }, { ...credentials, AGENT_SOURCE_PASSWORD: PACS_PASSWORD });
    expect(await a.done).toBe(3);
  }, 60_000);

  const doctorOutputs: Record<string, string> = {};
  it('lab-agent doctor checks the token and the source, passing and failing', async () => {
    for (const [name, token, password, expected] of [
      ['good', AGENT_TOKEN, PACS_PASSWORD, 0],
      ['bad', WRONG_AGENT_TOKEN, WRONG_SOURCE_PASSWORD, 1],
    ] as const) {
      const io = captureIO({ ...credentials, INFERENCE_AGENT_TOKEN: token, AGENT_SOURCE_PASSWORD: password, AGENT_PACS_PASSWORD: password });
      const args = ['doctor', '--json', '--api-url', api.url, '--runner', 'onnx', '--source', `orthanc:${orthanc.url}`, '--model', manifest];
      const code = await runCli([...args, '--outbox', path.join(tmp.dir, `doctor-${name}`), '--work-dir', path.join(tmp.dir, `doctor-work-${name}`)], io);
      doctorOutputs[`doctor ${name} output`] = [...io.out, ...io.err].join('');
      expect([name, code]).toEqual([name, expected]);
    }
    // The failing run names what failed (so its text covers the failure paths).
    expect(doctorOutputs['doctor bad output']).toMatch(/401|refused|token/i);
    if (process.env.SECRETS_DEBUG) console.log(doctorOutputs);
  }, 60_000);

  it('wrong tokens (401), stale and finished leases (409) are refused', async () => {
    for (const [m, p] of [['GET', '/api/inference/pending'], ['GET', '/api/inference/sec-ok/status']] as const) {
      expect((await api.call(m, p, { token: WRONG_AGENT_TOKEN })).status).toBe(401);
      expect((await api.call(m, p, { token: WRONG_CLIENT_TOKEN })).status).toBe(401);
    }
    const done = views[0] as { request_id: string };
    const real = (await api.api.store.get(done.request_id))!.job.last_completion!.lease_token!;
    expect(real.length).toBeGreaterThanOrEqual(16);
    for (const lease of [STALE_LEASE, real]) {
      expect((await api.call('POST', `/api/inference/${done.request_id}/heartbeat`, { token: 'agent', body: { lease_token: lease } })).status).toBe(409);
      expect((await api.call('POST', `/api/inference/${done.request_id}/uploads`, { token: 'agent', body: { lease_token: lease } })).status).toBe(409);
      expect((await api.call('POST', `/api/inference/${done.request_id}/complete`, { token: 'agent', body: { success: false, error: 'late', lease_token: lease } })).status).toBe(409);
    }
  });

  it('no secret in any log line, job error or answer', async () => {
    expect(views).toHaveLength(3);
    expect(agents.map((a) => a.name)).toEqual(['ok', 'bad-source', 'bad-pacs', 'bad-token']);
    const leases: string[] = [];
    for (const v of views as { request_id: string }[]) {
      const job = (await api.api.store.get(v.request_id))!.job;
      for (const l of [job.lease_token, job.last_completion?.lease_token]) if (l) leases.push(l);
    }
    expect(leases.length).toBeGreaterThanOrEqual(3);
    // Signed URL signatures are bearer credentials too (the download URLs the status answers hand out).
    const sigs = (views as { downloads?: Record<string, { url: string }> }[]).flatMap((v) => Object.values(v.downloads ?? {}).map((t) => new URL(t.url).searchParams.get('sig') ?? ''));
    expect(sigs.filter(Boolean).length).toBeGreaterThan(0);
    const basic = (pw: string) => Buffer.from(`lab:${pw}`).toString('base64');
    const secrets: Record<string, string> = {
      'agent token': AGENT_TOKEN,
      'client token': CLIENT_TOKEN,
      'wrong agent token': WRONG_AGENT_TOKEN,
      'wrong client token': WRONG_CLIENT_TOKEN,
      'stale lease': STALE_LEASE,
      'source/PACS password': PACS_PASSWORD,
      'source/PACS Basic header': basic(PACS_PASSWORD),
      'wrong source password': WRONG_SOURCE_PASSWORD,
      'wrong source Basic header': basic(WRONG_SOURCE_PASSWORD),
      'wrong PACS password': WRONG_PACS_PASSWORD,
      'wrong PACS Basic header': basic(WRONG_PACS_PASSWORD),
      ...Object.fromEntries(leases.map((l, i) => [`lease token ${i}`, l])),
      ...Object.fromEntries(sigs.filter(Boolean).map((s, i) => [`url signature ${i}`, s])),
    };
    const places: Record<string, string> = {
      'API log': apiLines.join('\n'),
      'job errors and answers': JSON.stringify(views) + JSON.stringify((await api.call('GET', '/api/inference?limit=100')).body),
    };
    for (const a of agents) places[`agent ${a.name} output`] = [...a.io.out, ...a.io.err].join('');
    Object.assign(places, doctorOutputs);
    expect(Object.keys(doctorOutputs)).toHaveLength(2);
    // The logs are not empty, and hold the failures' reasons (so the search ran over the failure paths).
    expect(apiLines.some((l) => l.includes(' 409'))).toBe(true);
    expect(apiLines.some((l) => l.includes(' 401'))).toBe(true);
    const all = Object.values(places).join('\n');
    expect(all).toMatch(/credentials/);
    expect(all).toMatch(/token/i);
    // The answers hand out download URLs by design: there, signatures are expected; anywhere else they leak.
    const allowed = (where: string, what: string) => where === 'job errors and answers' && what.startsWith('url signature');
    const leaks = Object.entries(places).flatMap(([where, text]) =>
      Object.entries(secrets).filter(([what, s]) => text.includes(s) && !allowed(where, what)).map(([what]) => `${what} in ${where}`),
    );
    expect(leaks).toEqual([]);
  });
});
