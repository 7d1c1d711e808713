import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestApi, type TestApi } from '../harness/api-server.js';
import { authEmulatorAvailable, startAuthEmulator, type AuthEmulator } from '../harness/auth-emulator.js';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const S4 = ['t1', 't1c', 't2', 'flair'];

const d = authEmulatorAvailable() ? describe : describe.skip;
if (!authEmulatorAvailable()) console.warn('SKIPPED: Firebase Auth suite — firebase-tools is not installed');

/** People sign in with Firebase Authentication; the real Auth emulator issues their tokens. */
d('Firebase ID tokens on client endpoints (Auth emulator)', () => {
  const projectId = `demo-auth-${Date.now().toString(36)}`;
  let emu: AuthEmulator;
  let t: TestApi;
  let clinician: string;
  let operator: string;
  let nobody: string;
  beforeAll(async () => {
    emu = await startAuthEmulator(projectId);
    process.env.FIREBASE_AUTH_EMULATOR_HOST = emu.host;
    t = await startTestApi({ env: { FIREBASE_AUTH: 'true', GOOGLE_CLOUD_PROJECT: projectId } });
    clinician = (await emu.signIn('clinician@example.org', { role: 'clinician' })).idToken;
    operator = (await emu.signIn('operator@example.org', { role: 'operator' })).idToken;
    nobody = (await emu.signIn('nobody@example.org', {})).idToken;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    emu?.stop();
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
  });

  it('lets a clinician start, follow and cancel, but not run the dashboard or retry', async () => {
    const s = await t.call('POST', '/api/inference/fb-1/start', { token: clinician, body: { series_ids: S4 } });
    expect(s.status).toBe(202);
    expect((await t.call('GET', '/api/inference/fb-1/status', { token: clinician })).status).toBe(200);
    expect((await t.call('GET', '/api/inference', { token: clinician })).status).toBe(403);
    expect((await t.call('GET', '/api/metrics', { token: clinician })).body.error).toMatch(/operator role/);
    expect((await t.call('POST', `/api/inference/${s.body.request_id}/cancel`, { token: clinician })).status).toBe(200);
    expect((await t.call('POST', `/api/inference/${s.body.request_id}/retry`, { token: clinician })).status).toBe(403);
  });

  it('lets an operator use the dashboard and retry', async () => {
    expect((await t.call('GET', '/api/inference', { token: operator })).status).toBe(200);
    expect((await t.call('GET', '/api/metrics', { token: operator })).status).toBe(200);
    const id = (await t.call('GET', '/api/inference/fb-1/status', { token: operator })).body.request_id;
    expect((await t.call('POST', `/api/inference/${id}/retry`, { token: operator })).status).toBe(200);
  });

  it('refuses a signed-in person without a role, and never admits people to agent endpoints', async () => {
    expect((await t.call('POST', '/api/inference/fb-2/start', { token: nobody, body: { series_ids: S4 } })).status).toBe(403);
    expect((await t.call('GET', '/api/inference/pending', { token: operator })).status).toBe(401);
  });

  it('refuses expired, foreign-project and forged tokens with 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: `https://securetoken.google.com/${projectId}`, aud: projectId, auth_time: now - 7200, user_id: 'u1', sub: 'u1', iat: now - 7200, exp: now - 3600, role: 'operator', firebase: { sign_in_provider: 'password' } };
    const expired = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    const r1 = await t.call('GET', '/api/metrics', { token: expired });
    expect(r1.status).toBe(401);
    expect(r1.body.error).toMatch(/expired/);
    const foreign = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, exp: now + 3600, iat: now, aud: 'demo-other', iss: 'https://securetoken.google.com/demo-other' })}.`;
    expect((await t.call('GET', '/api/metrics', { token: foreign })).status).toBe(401);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const head = `${b64({ alg: 'RS256', kid: 'made-up', typ: 'JWT' })}.${b64({ ...claims, exp: now + 3600, iat: now })}`;
    const forged = `${head}.${sign('RSA-SHA256', Buffer.from(head), privateKey).toString('base64url')}`;
    const r3 = await t.call('GET', '/api/metrics', { token: forged });
    expect(r3.status).toBe(401);
    expect(r3.body.error).toBe('invalid token');
  });

  it('tells the page to sign in with Firebase', async () => {
    const c = await t.call('GET', '/api/web-config', { token: null });
    expect(c.body.auth).toBe('token'); // no FIREBASE_API_KEY configured in this test
  });
});
