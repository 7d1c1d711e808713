/** `lab-agent doctor` against the real API, and the poller's reaction to 503 + Retry-After and 401. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiClient } from '../../lab-agent/src/api-client.js';
import { resolveConfig } from '../../lab-agent/src/config.js';
import { doctorExitCode, formatTable, runDoctor } from '../../lab-agent/src/doctor.js';
import { ApiError, AuthError } from '../../lab-agent/src/errors.js';
import { silentLogger } from '../../lab-agent/src/log.js';
import { Poller } from '../../lab-agent/src/poller.js';
import { createRunner } from '../../lab-agent/src/runners/registry.js';
import { AGENT_TOKEN, FIXTURE, removeDir, startApi, tempDir, type TestApi } from './helpers.js';

let api: TestApi;
let dir: string;
beforeAll(async () => {
  api = await startApi();
  dir = tempDir('doctor');
});
afterAll(async () => {
  await api.stop();
  removeDir(dir);
});

const providers = async () => [
  { provider: 'cpu' as const, ok: true, detail: 'session created and ran' },
  { provider: 'cuda' as const, ok: false, detail: 'Failed to load shared library' },
];

async function doctor(flags: Record<string, string>) {
  const { config } = resolveConfig({ apiUrl: api.url, token: AGENT_TOKEN, outbox: join(dir, 'o'), workDir: join(dir, 'w'), ...flags }, { cwd: dir, env: { PATH: process.env.PATH } });
  const runner = await createRunner(config.runner, { command: config.command, source: config.source, provider: config.provider, env: { PATH: process.env.PATH }, log: () => undefined }).catch((e: Error) => e);
  const rows = await runDoctor(config, { client: new ApiClient({ apiUrl: config.apiUrl, token: config.token, agentId: 'doc' }), runner, probeProviders: providers });
  return { rows, table: formatTable(rows), code: doctorExitCode(rows) };
}

describe('lab-agent doctor', () => {
  it('passes with a reachable API, a valid token and an existing command; GPU providers are informational', async () => {
    const { rows, table, code } = await doctor({ command: `node "${FIXTURE}" ok` });
    expect(code).toBe(0);
    const status = Object.fromEntries(rows.map((r) => [r.check, r.status]));
    expect(status).toMatchObject({ 'API reachable': 'ok', 'agent token': 'ok', 'runner: command': 'ok', 'onnxruntime cpu': 'ok', 'onnxruntime cuda': 'n/a', 'outbox folder': 'ok' });
    expect(table).toMatch(/^CHECK\s+STATUS\s+DETAIL/);
    expect(table).toMatch(/All required checks passed/);
    // The token check must not have claimed anything.
    await api.start('doctor-untouched', ['a', 'b', 'c', 'd']);
    expect((await api.status('doctor-untouched')).status).toBe('pending');
  });

  it('fails (exit 1) on a refused token, a missing program, and an unreachable API', async () => {
    const bad = await doctor({ token: 'not-the-token-0123456789', command: 'no-such-program-xyz --flag' });
    expect(bad.code).toBe(1);
    const byName = Object.fromEntries(bad.rows.map((r) => [r.check, r]));
    expect(byName['agent token']!.status).toBe('FAIL');
    expect(byName['agent token']!.detail).toMatch(/refused the agent token \(401/);
    expect(byName['runner: command']!.status).toBe('FAIL');
    expect(byName['runner: command']!.detail).toMatch(/'no-such-program-xyz' was not found on PATH/);
    expect(bad.table).toMatch(/2 required check\(s\) failed/);

    const down = await doctor({ apiUrl: 'http://127.0.0.1:9', command: `node "${FIXTURE}" ok` });
    expect(down.code).toBe(1);
    expect(down.rows.find((r) => r.check === 'API reachable')!.detail).toMatch(/ECONNREFUSED/);
  });
});

describe('poller', () => {
  it('waits as long as Retry-After says after a 503, and stops the agent on 401', async () => {
    const answers: Array<Error | null> = [new ApiError(503, 'store down', 300), null];
    const poller = new Poller({
      client: {
        async claim() {
          const a = answers.shift();
          if (a) throw a;
          return null;
        },
      },
      log: silentLogger,
      waitS: 1,
      maxBackoffMs: 60_000,
      random: () => 0,
    });
    const t0 = Date.now();
    expect(await poller.next(new AbortController().signal)).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(await poller.next(new AbortController().signal)).toBeNull();
    const refused = new Poller({ client: { claim: async () => Promise.reject(new AuthError(401, 'refused')) }, log: silentLogger, waitS: 1, maxBackoffMs: 10 });
    await expect(refused.next(new AbortController().signal)).rejects.toBeInstanceOf(AuthError);
  });
});
