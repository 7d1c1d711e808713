import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { freePort } from '../harness/firestore-emulator.js';

/**
 * What a newcomer runs: `npm start` (functions/src/cli/local.ts) — the API, the page, demo studies
 * and a real lab agent with the demo model — driven in Chromium from "AI analysis" to the result.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const haveModel = existsSync('models/demo/model.onnx');
if (!haveChromium) console.warn(`\n*** SKIPPED: npm start browser test — no Chromium at ${CHROMIUM} ***\n`);
if (!haveModel) console.warn('\n*** SKIPPED: npm start browser test — models/demo/model.onnx is missing ***\n');
const maybe = haveChromium && haveModel ? describe : describe.skip;
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'web');

function startLocal(port: number, dataDir: string): ChildProcess & { out: () => string } {
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'functions/src/cli/local.ts'], {
    env: { ...process.env, PORT: String(port), DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return Object.assign(child, { out: () => out });
}

async function healthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/api/healthz`)).ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`npm start did not answer on ${url} within ${timeoutMs} ms`);
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const t = setTimeout(() => reject(new Error('npm start did not stop')), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

const agentsFor = (dataDir: string): string[] => {
  try {
    return execFileSync('pgrep', ['-f', `${dataDir}/agent/outbox`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

maybe('npm start: the whole local system in a browser', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'lab-relay-local-'));
  let port: number;
  let url: string;
  let local: ReturnType<typeof startLocal> | null = null;
  let browser: Browser;
  beforeAll(async () => {
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    local = startLocal(port, dataDir);
    await healthy(url, 90_000);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    if (local && local.exitCode === null) local.kill('SIGKILL');
    for (const pid of agentsFor(dataDir)) process.kill(Number(pid), 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('analyses a demo study from the page with the real agent and model, and the dashboard lists it', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${url}/`);
    await page.getByLabel(/Demo phantom A/).check();
    await page.getByRole('button', { name: 'AI analysis' }).click();
    const preview = page.locator('img[src*="preview.png"]');
    await preview.waitFor({ timeout: 90_000 });
    await page.waitForFunction(() => {
      const img = (globalThis as unknown as { document: { querySelector(s: string): { complete: boolean; naturalWidth: number } | null } }).document.querySelector('img[src*="preview.png"]');
      return Boolean(img && img.complete && img.naturalWidth > 0);
    }, undefined, { timeout: 30_000 });
    const text = await page.locator('body').innerText();
    expect(text).toMatch(/edema|oedema/i);
    expect(text).toMatch(/whole tumou?r/i);
    const seg = page.getByRole('link', { name: /SEG/ });
    expect(await seg.getAttribute('href')).toContain('seg.dcm');
    await page.screenshot({ path: join(ARTIFACTS, 'npm-start-result-1280.png'), fullPage: true });

    const truth = JSON.parse(readFileSync(join(dataDir, 'demo/truth-a.json'), 'utf8')) as { whole_tumor_ml: number };
    const token = /INFERENCE_CLIENT_TOKENS=(.*)/.exec(readFileSync(join(dataDir, 'tokens.env'), 'utf8'))![1]!;
    const st = (await (await fetch(`${url}/api/inference/demo-phantom-a/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      status: string;
      agent_id: string;
      result: { whole_tumor_ml: number; tumor_detected: boolean };
    };
    expect(st).toMatchObject({ status: 'completed', agent_id: 'local-demo-agent', result: { tumor_detected: true } });
    // The demo model on a phantom it never saw: within the 10 % the model card promises.
    expect(Math.abs(st.result.whole_tumor_ml - truth.whole_tumor_ml) / truth.whole_tumor_ml).toBeLessThan(0.1);

    const dash = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await dash.goto(`${url}/dashboard.html`);
    await dash.getByText('demo-phantom-a').first().waitFor({ timeout: 15_000 });
    await dash.getByText('local-demo-agent').first().waitFor({ timeout: 15_000 });
    await dash.screenshot({ path: join(ARTIFACTS, 'npm-start-dashboard-1280.png'), fullPage: true });
    await page.close();
    await dash.close();
  }, 180_000);

  it('stops everything on Ctrl+C and keeps the results for the next start', async () => {
    expect(agentsFor(dataDir).length).toBeGreaterThan(0);
    local!.kill('SIGINT');
    await exited(local!, 20_000);
    const deadline = Date.now() + 15_000;
    while (agentsFor(dataDir).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(agentsFor(dataDir)).toEqual([]);

    local = startLocal(port, dataDir);
    await healthy(url, 60_000);
    const token = /INFERENCE_CLIENT_TOKENS=(.*)/.exec(readFileSync(join(dataDir, 'tokens.env'), 'utf8'))![1]!;
    const st = (await (await fetch(`${url}/api/inference/demo-phantom-a/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as { status: string };
    expect(st.status).toBe('completed');
    local.kill('SIGINT');
    await exited(local, 20_000);
  }, 120_000);
});
