import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../functions/src/config.js';
import { CLIENT_TOKEN, startTestApi, type TestApi } from '../harness/api-server.js';

function rawGet(base: string, path: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    request({ host: u.hostname, port: u.port, path }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
}

describe('local web serving and web-config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'web-'));
  let t: TestApi;
  beforeAll(async () => {
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>AI analysis</title>');
    writeFileSync(join(dir, 'assets', 'app.js'), 'console.log(1)');
    t = await startTestApi({ webDir: dir, env: { WEB_TOKEN_HANDOFF: 'true' } });
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page, its assets, and index.html for client routes', async () => {
    const index = await fetch(`${t.url}/`);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await index.text()).toContain('AI analysis');
    expect((await fetch(`${t.url}/assets/app.js`)).headers.get('content-type')).toContain('javascript');
    expect(await (await fetch(`${t.url}/dashboard`)).text()).toContain('AI analysis');
    expect((await fetch(`${t.url}/missing.js`)).status).toBe(404);
  });

  it('never serves files outside the web folder', async () => {
    expect(await rawGet(t.url, '/../../../../etc/passwd')).toBe(404);
    expect(await rawGet(t.url, '/%2e%2e/%2e%2e/etc/passwd')).toBe(404);
  });

  it('hands the local page its client token only when configured', async () => {
    const r = await t.call('GET', '/api/web-config', { token: null });
    expect(r.body).toEqual({ auth: 'token', token: CLIENT_TOKEN });
  });

  it('refuses the token hand-off on a non-loopback address', () => {
    expect(() => loadConfig({ WEB_TOKEN_HANDOFF: 'true', HOST: '0.0.0.0' })).toThrow(/WEB_TOKEN_HANDOFF/);
  });
});
