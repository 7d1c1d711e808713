import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { CLIENT_TOKEN, startTestApi, type TestApi } from '../harness/api-server.js';
import { authEmulatorAvailable, startAuthEmulator } from '../harness/auth-emulator.js';

/**
 * The web page and the operations dashboard in Debian's Chromium, against the real API in-process.
 * The test itself plays the lab agent (claim, heartbeat, signed uploads, complete), so the page is
 * tested without the ONNX pipeline.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'web');
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`\n*** SKIPPED: web page browser tests — no Chromium at ${CHROMIUM} (apt-get install chromium) ***\n`);
const maybe = haveChromium ? describe : describe.skip;

const WAIT = 15_000;
const AGENT = 'lab-pc-test';

const DEMOS = [
  { series_id: 'demo-brain-1', label: 'Demo brain 1 (phantom)', series_ids: { t1: 'd1-t1', t1c: 'd1-t1c', t2: 'd1-t2', flair: 'd1-flair' } },
  { series_id: 'demo-brain-2', label: 'Demo brain 2 (phantom)', series_ids: { t1: 'd2-t1', t1c: 'd2-t1c', t2: 'd2-t2', flair: 'd2-flair' } },
];

let api: TestApi;
let browser: Browser;
let webDir: string;
const contexts: BrowserContext[] = [];

/** A real PNG the size the agent draws previews (384 px): a grey square with a red blob. */
const PREVIEW_PX = 384;
function previewPng(): Buffer {
  const png = new PNG({ width: PREVIEW_PX, height: PREVIEW_PX });
  for (let y = 0; y < PREVIEW_PX; y++) {
    for (let x = 0; x < PREVIEW_PX; x++) {
      const i = (y * PREVIEW_PX + x) * 4;
      const inBlob = (x - 200) ** 2 + (y - 176) ** 2 < 3200;
      png.data[i] = inBlob ? 220 : 60;
      png.data[i + 1] = inBlob ? 40 : 60;
      png.data[i + 2] = inBlob ? 40 : 60;
      png.data[i + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}

interface Claim {
  id: string;
  lease_token: string;
  attempt: number;
  uploads: Record<string, { url: string; method: string; headers: Record<string, string> }>;
}

async function claim(agent = AGENT): Promise<Claim> {
  const r = await api.call('GET', '/api/inference/pending', { token: 'agent', headers: { 'x-agent-id': agent } });
  expect(r.status).toBe(200);
  expect(r.body.id).toEqual(expect.any(String));
  return r.body as Claim;
}

async function heartbeat(c: Claim, stage: string, percent: number, agent = AGENT) {
  const r = await api.call('POST', `/api/inference/${c.id}/heartbeat`, { token: 'agent', headers: { 'x-agent-id': agent }, body: { lease_token: c.lease_token, progress: { stage, percent } } });
  expect(r.status).toBe(200);
  return r.body as { cancel: boolean };
}

/** Uploads through the signed URL exactly as an agent does; returns the OutputRef for the completion. */
async function upload(c: Claim, name: 'preview' | 'seg', data: Buffer, file: string) {
  const target = c.uploads[name]!;
  const r = await fetch(target.url, { method: target.method, headers: target.headers, body: data });
  expect(r.status).toBe(200);
  return { object: `requests/${c.id}/${c.attempt}/${file}`, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), content_type: target.headers['content-type'] ?? 'application/octet-stream' };
}

async function newPage(viewport = { width: 1280, height: 800 }): Promise<Page> {
  const ctx = await browser.newContext({ viewport });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT);
  return page;
}

/** Waits until the locator's text matches. */
async function waitText(loc: Locator, text: string | RegExp) {
  await loc.filter({ hasText: text }).first().waitFor({ state: 'visible', timeout: WAIT });
}

/** Plays a tab going to the background (or back): what the page sees when the user switches tabs. */
async function setHidden(page: Page, hidden: boolean) {
  // Page-side code as a string: the test program has no DOM types.
  await page.evaluate(`Object.defineProperty(document, 'hidden', { configurable: true, get: () => ${hidden} }); document.dispatchEvent(new Event('visibilitychange'));`);
}

async function shot(page: Page, name: string) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

maybe('web page in Chromium', () => {
  beforeAll(async () => {
    // Built into a temporary folder: a running `npm start` may be serving web/dist meanwhile.
    webDir = mkdtempSync(join(tmpdir(), 'lab-relay-web-'));
    await promisify(execFile)(process.execPath, ['web/build.mjs', '--out', webDir], { timeout: 60_000 });
    mkdirSync(join(webDir, 'demo'));
    writeFileSync(join(webDir, 'demo', 'studies.json'), JSON.stringify(DEMOS));
    api = await startTestApi({ webDir, env: { WEB_TOKEN_HANDOFF: 'true' } });
    const { chromium } = await import('playwright-core');
    // launch() gives the browser a fresh temporary profile (--user-data-dir) and removes it on close.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
      timeout: 60_000,
    });
  }, 120_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close().catch(() => {});
    await api?.close();
    if (webDir) rmSync(webDir, { recursive: true, force: true });
  }, 30_000);

  test('AI analysis: progress from heartbeats, then the result with the preview image and the SEG link', async () => {
    const page = await newPage();
    const consoleErrors: string[] = [];
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    const statusCalls: number[] = [];
    const elsewhere: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/status')) statusCalls.push(Date.now());
      if (!r.url().startsWith(api.url + '/')) elsewhere.push(r.url());
    });
    await page.goto(api.url + '/');

    // The demo list is shown and the first study is chosen; it has not been analysed yet.
    await page.getByLabel(/Demo brain 1/).waitFor();
    expect(await page.getByLabel(/Demo brain 1/).isChecked()).toBe(true);
    await waitText(page.locator('#job-status'), 'has not been analysed yet');
    await page.getByRole('button', { name: 'AI analysis' }).click();
    await waitText(page.locator('#job-badge'), 'Queued');

    const c = await claim();
    await heartbeat(c, 'infer', 40);
    await waitText(page.locator('#job-status'), 'Running the model: 40 %');
    expect(await page.evaluate('document.getElementById("job-bar").value')).toBe(40);
    await waitText(page.locator('#job-meta'), AGENT);
    await shot(page, 'analysis-running-1280');

    // A hidden tab stops polling; showing it again polls at once.
    await setHidden(page, true);
    const hiddenAt = Date.now();
    await new Promise((r) => setTimeout(r, 3500));
    expect(statusCalls.filter((t) => t > hiddenAt + 300)).toEqual([]);
    await heartbeat(c, 'write_seg', 90);
    await setHidden(page, false);
    await waitText(page.locator('#job-status'), 'Writing the DICOM SEG: 90 %');

    const seg = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.from('not a real SEG, bytes for the download link')]);
    const outputs = { preview: await upload(c, 'preview', previewPng(), 'preview.png'), seg: await upload(c, 'seg', seg, 'seg.dcm') };
    const done = await api.call('POST', `/api/inference/${c.id}/complete`, {
      token: 'agent',
      headers: { 'x-agent-id': AGENT },
      body: {
        success: true,
        lease_token: c.lease_token,
        tumor_detected: true,
        tumor_volume_voxels: 51234,
        inference_time_seconds: 3.21,
        volumes_ml: { necrotic_core: 4.25, edema: 31.5, enhancing: 12.125 },
        whole_tumor_ml: 47.875,
        timings: { load: 0.81, resample: 0.12, infer: 3.21, write_seg: 0.2, preview: 0.05 },
        model: { name: 'brats-demo-unet', version: '0.3.0' },
        outputs,
      },
    });
    expect(done.status).toBe(200);

    await waitText(page.locator('#job-badge'), 'Completed');
    await waitText(page.locator('#tumour-detected'), 'Yes');
    const rows = await page.locator('table.volumes tbody tr').allInnerTexts();
    expect(rows.map((r) => r.replace(/\s+/g, ' ').trim())).toEqual(['Necrotic core 4.25', 'Oedema 31.5', 'Enhancing tumour 12.1']);
    expect(await page.locator('#whole-tumour').innerText()).toBe('47.9');
    expect(await page.locator('#model').innerText()).toBe('brats-demo-unet 0.3.0');
    await waitText(page.locator('table.timings'), 'Running the model');
    await waitText(page.getByRole('note'), 'Not for clinical use');
    // The preview image really loaded from its signed URL.
    await page.waitForFunction('(() => { const i = document.getElementById("preview"); return i !== null && i.complete && i.naturalWidth > 0; })()');
    expect(await page.evaluate('document.getElementById("preview").naturalWidth')).toBe(PREVIEW_PX);
    // The SEG link is a signed download of exactly the uploaded bytes.
    const href = await page.locator('#seg-link').getAttribute('href');
    expect(href).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/blobs\/requests\//);
    const got = Buffer.from(await (await fetch(href!)).arrayBuffer());
    expect(got.equals(seg)).toBe(true);
    expect(await page.getByRole('button', { name: 'Run again' }).isVisible()).toBe(true);
    // Once completed, the page stops polling.
    const before = statusCalls.length;
    await new Promise((r) => setTimeout(r, 2500));
    expect(statusCalls.length).toBe(before);

    await shot(page, 'analysis-result-1280');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, 'analysis-result-narrow');
    // Pressing "AI analysis" again shows the earlier result instead of queuing a duplicate.
    await page.getByRole('button', { name: 'AI analysis' }).click();
    await waitText(page.locator('#call-error'), 'This study was already analysed');
    expect((await api.call('GET', '/api/inference?limit=10')).body.items.filter((v: { series_id: string }) => v.series_id === 'demo-brain-1')).toHaveLength(1);
    expect(consoleErrors).toEqual([]);
    // Nothing from a CDN or any other host: the page works on a closed hospital network.
    expect(elsewhere).toEqual([]);
  });

  test('cancel while running shows cancelled; "Run again" queues a new run', async () => {
    const page = await newPage();
    await page.goto(api.url + '/');
    // Keyboard only: arrow keys move through the studies, Tab reaches the button, Enter starts.
    await page.getByLabel(/Demo brain 1/).focus();
    await page.keyboard.press('ArrowDown');
    expect(await page.getByLabel(/Demo brain 2/).isChecked()).toBe(true);
    await waitText(page.locator('#job-series'), 'demo-brain-2');
    await waitText(page.locator('#job-status'), 'has not been analysed yet');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.id')).toBe('analyse');
    // The focus ring is drawn (keyboard focus), not left to the browser's faint default.
    expect(await page.evaluate('getComputedStyle(document.activeElement).outlineStyle')).toBe('solid');
    await page.keyboard.press('Enter');
    await waitText(page.locator('#job-badge'), 'Queued');
    // The server out of reach for a while: said in plain words, and gone once it answers again.
    await page.route('**/status', (route) => route.abort('connectionrefused'));
    await waitText(page.locator('#call-error'), 'Cannot reach the analysis server');
    await page.unroute('**/status');
    await page.locator('#call-error').waitFor({ state: 'hidden', timeout: WAIT });
    const c = await claim();
    await heartbeat(c, 'load', 10);
    await waitText(page.locator('#job-status'), 'Loading the series: 10 %');

    await page.getByRole('button', { name: 'Cancel analysis' }).click();
    await waitText(page.locator('#job-badge'), 'Cancelled');
    await waitText(page.locator('#job-status'), 'The analysis was cancelled');
    // The agent learns it at its next heartbeat.
    expect((await heartbeat(c, 'load', 20)).cancel).toBe(true);

    await page.getByRole('button', { name: 'Run again' }).click();
    await waitText(page.locator('#job-badge'), 'Queued');
    const status = await api.call('GET', '/api/inference/demo-brain-2/status');
    expect(status.body.status).toBe('pending');
    expect(status.body.request_id).not.toBe(c.id);
    // Leave the queue empty for the next tests.
    await api.call('POST', `/api/inference/${status.body.request_id}/cancel`);
  });

  test('typed series ids; a failed analysis shows its reason in plain words and can be run again', async () => {
    const page = await newPage();
    await page.goto(api.url + '/');
    await page.getByLabel(/Another study/).check();
    await page.getByLabel('Study id').fill('typed-study-7');
    await page.getByLabel('T1 series').fill('t7-t1');
    await page.getByRole('button', { name: 'AI analysis' }).click();
    // Missing fields are named before anything is sent.
    await waitText(page.locator('#form-error'), 'Please fill in the T1c series, the T2 series, the FLAIR series');
    await page.getByLabel(/T1c series/).fill('t7-t1c');
    await page.getByLabel('T2 series').fill('t7-t2');
    await page.getByLabel('FLAIR series').fill('t7-flair');
    await page.getByRole('button', { name: 'AI analysis' }).click();
    await waitText(page.locator('#job-badge'), 'Queued');

    const c = await claim();
    const failed = await api.call('POST', `/api/inference/${c.id}/complete`, {
      token: 'agent',
      headers: { 'x-agent-id': AGENT },
      body: { success: false, lease_token: c.lease_token, retryable: false, error: 'series t7-t2 was not found in the PACS' },
    });
    expect(failed.status).toBe(200);
    await waitText(page.locator('#job-badge'), 'Failed');
    await waitText(page.locator('#job-error'), 'series t7-t2 was not found in the PACS');
    expect(await page.locator('#job-error').getAttribute('class')).toBe('error');
    await shot(page, 'analysis-failed-1280');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, 'analysis-failed-narrow');
    await page.setViewportSize({ width: 1280, height: 800 });

    // Run again with the same ids queues a new request (a failed one does not block a plain start).
    await page.getByRole('button', { name: 'Run again' }).click();
    await waitText(page.locator('#job-badge'), 'Queued');
    const again = await claim();
    expect(again.id).not.toBe(c.id);
    await api.call('POST', `/api/inference/${again.id}/cancel`);

    // An API refusal is shown in plain words: different series for the same study is a conflict…
    await page.getByLabel('FLAIR series').fill('t7-flair-v2');
    const finished = await api.call('POST', '/api/inference/typed-study-7/start', { body: { series_ids: ['t7-t1', 't7-t1c', 't7-t2', 't7-flair'] } });
    expect(finished.status).toBe(202);
    await page.getByRole('button', { name: 'AI analysis' }).click();
    await waitText(page.locator('#call-error'), 'already has an analysis made from different series');
    // …which the user can resolve from the page.
    // (The badge already says Queued for the other run, so wait for the forced start's answer.)
    await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/inference/typed-study-7/start') && r.status() === 202),
      page.getByRole('button', { name: 'Replace it with these series' }).click(),
    ]);
    const replaced = await api.call('GET', '/api/inference/typed-study-7/status');
    expect(replaced.body.series_ids).toEqual(['t7-t1', 't7-t1c', 't7-t2', 't7-flair-v2']);
    await api.call('POST', `/api/inference/${replaced.body.request_id}/cancel`);
  });

  test('without a handed-over token the page asks for one; a wrong token is refused in plain words', async () => {
    const page = await newPage();
    // The loopback API hands its token over; this page plays a deployment that does not.
    await page.route('**/api/web-config', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ auth: 'token' }) }));
    await page.goto(api.url + '/');
    const field = page.getByLabel('Client token');
    await field.waitFor();
    await field.fill('wrong-token-0123456789abcdef');
    await page.getByRole('button', { name: 'Use this token' }).click();
    await waitText(page.locator('#auth [role=alert]'), 'The server did not accept this token');
    await shot(page, 'token-refused-1280');
    await page.getByLabel('Client token').fill(CLIENT_TOKEN);
    await page.getByRole('button', { name: 'Use this token' }).click();
    await waitText(page.locator('#job-status'), /analysed|Completed|Analysis completed/);
    // Kept for this tab only: a reload does not ask again.
    await page.reload();
    await page.getByLabel(/Demo brain 1/).waitFor();
    expect(await page.getByLabel('Client token').count()).toBe(0);
  });

  test('Firebase sign-in (cloud mode): wrong password in plain words, then the ID token is sent as Bearer', async () => {
    const page = await newPage();
    const project = 'demo-lab-relay';
    await page.route('**/api/web-config', (route) =>
      route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ auth: 'firebase', firebase: { apiKey: 'test-api-key', authDomain: `${project}.firebaseapp.com`, projectId: project } }) }),
    );
    // Identity Toolkit played here (no internet): the SDK's real requests, answered as Google does.
    const now = Math.floor(Date.now() / 1000);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const idToken = `${b64({ alg: 'RS256', kid: 'k1', typ: 'JWT' })}.${b64({ iss: `https://securetoken.google.com/${project}`, aud: project, auth_time: now, user_id: 'uid-1', sub: 'uid-1', iat: now, exp: now + 3600, email: 'alice@example.org', email_verified: true, firebase: { identities: { email: ['alice@example.org'] }, sign_in_provider: 'password' } })}.c2lnbmF0dXJl`;
    const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': '*', 'access-control-allow-methods': 'POST, GET, OPTIONS' };
    const signIns: string[] = [];
    await page.route('https://identitytoolkit.googleapis.com/**', async (route) => {
      const req = route.request();
      if (req.method() === 'OPTIONS') return route.fulfill({ status: 204, headers: cors });
      const url = req.url();
      const body = req.postDataJSON() as Record<string, unknown>;
      if (url.includes('accounts:signInWithPassword')) {
        signIns.push(String(body.email));
        if (body.password !== 'correct horse') {
          return route.fulfill({ status: 400, headers: cors, contentType: 'application/json', body: JSON.stringify({ error: { code: 400, message: 'INVALID_LOGIN_CREDENTIALS', errors: [{ message: 'INVALID_LOGIN_CREDENTIALS', domain: 'global', reason: 'invalid' }] } }) });
        }
        return route.fulfill({ status: 200, headers: cors, contentType: 'application/json', body: JSON.stringify({ kind: 'identitytoolkit#VerifyPasswordResponse', localId: 'uid-1', email: 'alice@example.org', displayName: '', idToken, registered: true, refreshToken: 'refresh-1', expiresIn: '3600' }) });
      }
      if (url.includes('accounts:lookup')) {
        return route.fulfill({ status: 200, headers: cors, contentType: 'application/json', body: JSON.stringify({ kind: 'identitytoolkit#GetAccountInfoResponse', users: [{ localId: 'uid-1', email: 'alice@example.org', emailVerified: true, providerUserInfo: [{ providerId: 'password', email: 'alice@example.org', federatedId: 'alice@example.org', rawId: 'alice@example.org' }], passwordUpdatedAt: 1, validSince: String(now - 10), lastLoginAt: String(now * 1000), createdAt: String(now * 1000) }] }) });
      }
      return route.fulfill({ status: 404, headers: cors, contentType: 'application/json', body: JSON.stringify({ error: { code: 404, message: 'NOT_FOUND' } }) });
    });
    // The API under test takes client tokens; this stands in for its Firebase verification (another
    // change): it checks the page sent the ID token, then passes the call on with a client token.
    const bearers: string[] = [];
    let apiAcceptsIdToken = true;
    await page.route(/\/api\/(inference|metrics)/, (route) => {
      const auth = route.request().headers()['authorization'] ?? '';
      bearers.push(auth);
      if (!apiAcceptsIdToken) return route.continue();
      return route.continue({ headers: { ...route.request().headers(), authorization: auth === `Bearer ${idToken}` ? `Bearer ${CLIENT_TOKEN}` : auth } });
    });

    await page.goto(api.url + '/');
    await page.getByLabel('Email').fill('alice@example.org');
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitText(page.locator('#auth-error'), 'The email or password is not correct.');
    await shot(page, 'firebase-sign-in-1280');

    await page.getByLabel('Password').fill('correct horse');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitText(page.locator('#who'), 'Signed in as alice@example.org');
    await page.getByLabel(/Demo brain 1/).waitFor();
    await waitText(page.locator('#job-status'), /has not been analysed yet|Analysis completed/);
    expect(signIns).toEqual(['alice@example.org', 'alice@example.org']);
    expect(bearers.length).toBeGreaterThan(0);
    expect(new Set(bearers)).toEqual(new Set([`Bearer ${idToken}`]));

    // An API that refuses the token signs the user out with a sentence saying so.
    apiAcceptsIdToken = false;
    await page.getByLabel(/Demo brain 2/).check();
    await waitText(page.locator('#auth-error'), 'Your sign-in was not accepted');
    expect(await page.getByLabel('Email').isVisible()).toBe(true);
    expect(await page.locator('#workspace').isHidden()).toBe(true);
  });

  test('Firebase sign-in against the real Auth emulator: a clinician analyses; the dashboard needs an operator', async () => {
    if (!authEmulatorAvailable()) {
      console.warn('\n*** SKIPPED: web page sign-in against the Auth emulator — firebase-tools is not installed ***\n');
      return;
    }
    const projectId = `demo-web-${Date.now().toString(36)}`;
    const emu = await startAuthEmulator(projectId);
    const previousHost = process.env.FIREBASE_AUTH_EMULATOR_HOST;
    process.env.FIREBASE_AUTH_EMULATOR_HOST = emu.host; // firebase-admin in the API verifies against it
    let fb: TestApi | undefined;
    try {
      fb = await startTestApi({ webDir, env: { FIREBASE_AUTH: 'true', FIREBASE_API_KEY: 'fake-api-key', GOOGLE_CLOUD_PROJECT: projectId } });
      await emu.signIn('clinician@example.org', { role: 'clinician' });
      await emu.signIn('operator@example.org', { role: 'operator' });
      const page = await newPage();
      // The API's own web-config, plus where the emulator is (the API does not say that yet).
      await page.route('**/api/web-config', async (route) => {
        const real = await route.fetch();
        const cfg = (await real.json()) as { auth: string; firebase: Record<string, string> };
        expect(cfg.auth).toBe('firebase');
        await route.fulfill({ response: real, json: { ...cfg, firebase: { ...cfg.firebase, authEmulatorUrl: `http://${emu.host}` } } });
      });
      const signIn = async (email: string) => {
        await page.getByLabel('Email').fill(email);
        await page.getByLabel('Password').fill('correct horse battery staple');
        await page.getByRole('button', { name: 'Sign in' }).click();
        await waitText(page.locator('#who'), `Signed in as ${email}`);
      };

      await page.goto(fb.url + '/');
      await signIn('clinician@example.org');
      await waitText(page.locator('#job-status'), 'has not been analysed yet');
      await page.getByRole('button', { name: 'AI analysis' }).click();
      await waitText(page.locator('#job-badge'), 'Queued');
      expect((await fb.call('GET', '/api/inference/demo-brain-1/status')).body.status).toBe('pending');

      // Same tab, so still signed in; a clinician may not use the dashboard, and is told so.
      await page.goto(fb.url + '/dashboard.html');
      await waitText(page.locator('#who'), 'Signed in as clinician@example.org');
      await waitText(page.locator('#board-error'), 'Your account is not allowed to do this');
      await waitText(page.locator('#board-error'), 'operator');
      await shot(page, 'dashboard-clinician-refused-1280');

      await page.getByRole('button', { name: 'Sign out' }).click();
      await signIn('operator@example.org');
      await waitText(page.locator('#requests tbody'), 'demo-brain-1');
      expect(await page.locator('#board-error').isHidden()).toBe(true);
    } finally {
      await fb?.close();
      emu.stop();
      if (previousHost === undefined) delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
      else process.env.FIREBASE_AUTH_EMULATOR_HOST = previousHost;
    }
  }, 120_000);

  test('dashboard: requests with status, agent and error; agents; cancel and retry; paging', async () => {
    // Enough queued requests to need a second page, then (newest, so on page 1) one running request
    // with its agent and one failed with a reason. Priority 10 makes the fake agent claim those two.
    for (let i = 0; i < 24; i++) {
      const r = await api.call('POST', `/api/inference/bulk-${String(i).padStart(2, '0')}/start`, { body: { series_ids: ['a', 'b', 'c', 'd'] } });
      expect(r.status).toBe(202);
    }
    const dash1 = await api.call('POST', '/api/inference/dash-running/start', { body: { series_ids: ['a', 'b', 'c', 'd'], priority: 10 } });
    expect(dash1.status).toBe(202);
    const running = await claim('lab-pc-dash');
    expect(running.id).toBe(dash1.body.request_id);
    await heartbeat(running, 'infer', 55, 'lab-pc-dash');
    await api.call('POST', '/api/inference/dash-failed/start', { body: { series_ids: ['a', 'b', 'c', 'd'], priority: 10 } });
    const failing = await claim('lab-pc-dash');
    await api.call('POST', `/api/inference/${failing.id}/complete`, { token: 'agent', headers: { 'x-agent-id': 'lab-pc-dash' }, body: { success: false, lease_token: failing.lease_token, error: 'out of GPU memory' } });
    // A retryable failure waits (backoff) before its next attempt.
    await api.call('POST', '/api/inference/dash-retrying/start', { body: { series_ids: ['a', 'b', 'c', 'd'], priority: 10 } });
    const retrying = await claim('lab-pc-dash');
    await api.call('POST', `/api/inference/${retrying.id}/complete`, { token: 'agent', headers: { 'x-agent-id': 'lab-pc-dash' }, body: { success: false, retryable: true, lease_token: retrying.lease_token, error: 'the PACS did not answer' } });

    const page = await newPage();
    await page.goto(api.url + '/dashboard.html');
    const runningRow = page.locator(`tr[data-request="${running.id}"]`);
    await waitText(runningRow, 'Running');
    await waitText(runningRow, 'lab-pc-dash');
    await waitText(runningRow, 'Running the model: 55 %');
    const failedRow = page.locator(`tr[data-request="${failing.id}"]`);
    await waitText(failedRow, 'out of GPU memory');
    await waitText(failedRow, 'Failed');
    const retryingRow = page.locator(`tr[data-request="${retrying.id}"]`);
    await waitText(retryingRow, 'the PACS did not answer');
    await waitText(retryingRow, /next attempt in \d+ s/);
    await waitText(retryingRow, '1 / 3');
    await waitText(page.locator('#agents tr[data-agent="lab-pc-dash"]'), 'OK');
    await waitText(page.locator('#agents tr[data-agent="lab-pc-dash"]'), running.id);
    await waitText(page.locator('#tiles'), 'Queued');
    const queued = await page.locator('.tile[data-tile="Queued"] dd').innerText();
    expect(queued).toBe('25');
    expect(await page.locator('.tile[data-tile="Oldest queued"] dd').innerText()).toMatch(/^\d+ s$/);
    await shot(page, 'dashboard-1280');

    // Paging: 25 per page, newest first, so the oldest bulk request is on page 2.
    expect(await page.locator('#requests tbody tr').count()).toBe(25);
    expect(await page.getByRole('button', { name: '← Newer' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Older →' }).click();
    await waitText(page.locator('#page-label'), 'Page 2');
    await waitText(page.locator('#requests tbody'), 'bulk-00');
    expect(await runningRow.count()).toBe(0);
    await page.getByRole('button', { name: '← Newer' }).click();
    await waitText(page.locator('#page-label'), 'Page 1');
    await runningRow.waitFor();

    // The status filter, then cancel the running request from the dashboard and retry it.
    await page.locator('#status-filter').selectOption('processing');
    await page.waitForFunction('document.querySelectorAll("#requests tbody tr").length === 1', undefined, { timeout: WAIT });
    await waitText(runningRow, 'Running');
    await page.locator('#status-filter').selectOption('');
    await waitText(page.locator('#requests tbody'), 'bulk-23');
    await runningRow.getByRole('button', { name: /Cancel/ }).click();
    await waitText(runningRow, 'Cancelled');
    expect((await heartbeat(running, 'infer', 60, 'lab-pc-dash')).cancel).toBe(true);
    await runningRow.getByRole('button', { name: /Retry/ }).click();
    await waitText(runningRow, 'Queued');
    const after = await api.call('GET', '/api/inference/dash-running/status');
    expect(after.body.status).toBe('pending');
    expect(after.body.request_id).toBe(running.id);
    await failedRow.getByRole('button', { name: /Retry/ }).click();
    await waitText(failedRow, 'Queued');

    // It refreshes itself: a change made elsewhere shows up without a click.
    const c = await claim('lab-pc-other');
    await waitText(page.locator(`tr[data-request="${c.id}"]`), 'lab-pc-other');

    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, 'dashboard-narrow');

    // An agent not heard from for minutes is flagged stale (the server's clock is moved on here).
    await page.route('**/api/metrics', async (route) => {
      const real = await route.fetch();
      const m = (await real.json()) as { now: string };
      m.now = new Date(Date.parse(m.now) + 600_000).toISOString();
      await route.fulfill({ response: real, json: m });
    });
    await page.getByRole('button', { name: 'Refresh now' }).click();
    await waitText(page.locator('#agents tr[data-agent="lab-pc-dash"]'), 'Stale');
  });
});
