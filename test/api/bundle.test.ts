import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';

/** The deployable artifact: functions/dist must load on its own and serve `api`. */
describe('Cloud Function bundle', () => {
  it('builds a self-contained ESM bundle that serves the API through functions-framework', () => {
    execFileSync(process.execPath, ['functions/scripts/bundle.mjs'], { stdio: 'pipe' });
    const pkg = JSON.parse(readFileSync('functions/dist/package.json', 'utf8'));
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['@google-cloud/firestore', '@google-cloud/functions-framework', '@google-cloud/storage', 'firebase-admin']);
    expect(readFileSync('functions/dist/index.js', 'utf8')).not.toMatch(/from ['"]@lab-relay\/protocol['"]/);
    const script = `
      await import('./functions/dist/index.js');
      const { getTestServer } = await import('@google-cloud/functions-framework/testing');
      const server = getTestServer('api');
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const res = await fetch('http://127.0.0.1:' + server.address().port + '/api/healthz');
      console.log(res.status, JSON.stringify(await res.json()));
      server.close();
      process.exit(0);`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, JOB_STORE: 'sqlite', SQLITE_PATH: ':memory:', LOG_LEVEL: 'ERROR' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(out.trim()).toBe('200 {"ok":true,"store":"sqlite"}');
  });
});
