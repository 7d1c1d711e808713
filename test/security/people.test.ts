/**
 * People (Firebase ID tokens from the real Auth emulator) against the agent side of the API: no role
 * reaches any agent endpoint — test/api/firebase-auth.test.ts checks `pending` only — and a person's ID
 * token (a bearer credential) never appears in the API's log, whether it was accepted or refused.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ClaimedJob } from '@lab-relay/protocol';
import { startTestApi, type TestApi } from '../harness/api-server.js';
import { authEmulatorAvailable, startAuthEmulator, type AuthEmulator } from '../harness/auth-emulator.js';

const S4 = ['t1', 't1c', 't2', 'flair'];
const d = authEmulatorAvailable() ? describe : describe.skip;
if (!authEmulatorAvailable()) console.warn('SKIPPED: security people suite — firebase-tools is not installed');

d('people never reach agent endpoints; their ID tokens are never logged (Auth emulator)', () => {
  const projectId = `demo-sec-${Date.now().toString(36)}`;
  const lines: string[] = [];
  let emu: AuthEmulator;
  let t: TestApi;
  const people: Record<string, string> = {};

  beforeAll(async () => {
    emu = await startAuthEmulator(projectId);
    process.env.FIREBASE_AUTH_EMULATOR_HOST = emu.host;
    t = await startTestApi({ lines, env: { FIREBASE_AUTH: 'true', GOOGLE_CLOUD_PROJECT: projectId } });
    people.operator = (await emu.signIn('sec-operator@example.org', { role: 'operator' })).idToken;
    people.clinician = (await emu.signIn('sec-clinician@example.org', { role: 'clinician' })).idToken;
    // A claim that makes a person an agent must not be honoured either.
    people.agentClaim = (await emu.signIn('sec-agent@example.org', { role: 'agent' })).idToken;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    emu?.stop();
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
  });

  it('every role is refused on pending, heartbeat, uploads and complete, with a real lease in hand', async () => {
    expect((await t.call('POST', '/api/inference/sec-p1/start', { token: people.clinician!, body: { series_ids: S4 } })).status).toBe(202);
    const job = ClaimedJob.parse((await t.call('GET', '/api/inference/pending', { token: 'agent' })).body);
    const lease = { lease_token: job.lease_token };
    for (const [who, token] of Object.entries(people)) {
      const answers = {
        pending: (await t.call('GET', '/api/inference/pending', { token })).status,
        heartbeat: (await t.call('POST', `/api/inference/${job.id}/heartbeat`, { token, body: lease })).status,
        uploads: (await t.call('POST', `/api/inference/${job.id}/uploads`, { token, body: lease })).status,
        complete: (await t.call('POST', `/api/inference/${job.id}/complete`, { token, body: { success: true, ...lease } })).status,
      };
      expect([who, answers]).toEqual([who, { pending: 401, heartbeat: 401, uploads: 401, complete: 401 }]);
    }
    // Nothing changed: the job is still the agent's.
    const st = (await t.call('GET', '/api/inference/sec-p1/status')).body;
    expect([st.status, st.result]).toEqual(['processing', null]);
    // Control: the operator is a valid person (the dashboard answers).
    expect((await t.call('GET', '/api/metrics', { token: people.operator! })).status).toBe(200);
  });

  it('no ID token in the API log', () => {
    const all = lines.join('\n');
    expect(all).toMatch(/ 401/);
    expect(all).toMatch(/ 202/);
    for (const [who, token] of Object.entries(people)) {
      expect([who, all.includes(token)]).toEqual([who, false]);
      // The signature-free part of a JWT (header.payload) is the identifying part: not logged either.
      expect([who, all.includes(token.split('.').slice(0, 2).join('.'))]).toEqual([who, false]);
    }
  });
});
