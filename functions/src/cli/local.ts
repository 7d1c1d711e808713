/**
 * `npm start`: the whole system on one machine, on loopback, state under .data/ — the API with the
 * embedded stores, the web page, one lab agent with the demo model, and demo studies (synthetic
 * phantoms in a local folder source). Tokens are created once (.data/tokens.env, mode 0600) and the
 * page is handed its client token, so nobody has to sign in. A second start keeps earlier results.
 * Ctrl+C stops everything.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const DATA = resolve(process.env.DATA_DIR ?? join(ROOT, '.data'));
const TOKENS = join(DATA, 'tokens.env');
const DEMO = join(DATA, 'demo');
const WEB_DIST = join(ROOT, 'web/dist');

function say(line = ''): void {
  process.stderr.write(line + '\n');
}

function ensureSecrets(): Record<string, string> {
  mkdirSync(DATA, { recursive: true });
  const t = () => randomBytes(24).toString('base64url');
  if (!existsSync(TOKENS)) writeFileSync(TOKENS, `INFERENCE_AGENT_TOKENS=${t()}\nINFERENCE_CLIENT_TOKENS=${t()}\n`, { mode: 0o600 });
  if (!readFileSync(TOKENS, 'utf8').includes('BLOB_SIGNING_SECRET=')) {
    // Signed output URLs must survive a restart of the local system.
    writeFileSync(TOKENS, `BLOB_SIGNING_SECRET=${randomBytes(32).toString('base64url')}\n`, { flag: 'a', mode: 0o600 });
  }
  const out: Record<string, string> = {};
  for (const line of readFileSync(TOKENS, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

interface DemoStudy {
  series_id: string;
  label: string;
  series_ids: { t1: string; t1c: string; t2: string; flair: string };
}

/**
 * Demo studies: seeded phantoms written as real DICOM series, one folder per series under
 * .data/demo/series (the folder source's ids are folder names). Made once, then reused.
 */
async function ensureDemoStudies(): Promise<DemoStudy[]> {
  const list = join(DEMO, 'studies.json');
  if (existsSync(list)) return JSON.parse(readFileSync(list, 'utf8')) as DemoStudy[];
  const { synthesizePhantom } = await import('../../../lab-agent/src/phantom/synthesize.js');
  const { writePhantomStudy } = await import('../../../lab-agent/src/phantom/write-study.js');
  const series = join(DEMO, 'series');
  mkdirSync(series, { recursive: true });
  const studies: DemoStudy[] = [];
  for (const [key, seed, label] of [
    ['a', 4101, 'Demo phantom A (synthetic, seed 4101)'],
    ['b', 4102, 'Demo phantom B (synthetic, seed 4102)'],
  ] as const) {
    const tmp = join(DEMO, `tmp-${key}`);
    rmSync(tmp, { recursive: true, force: true });
    say(`  writing demo study ${key.toUpperCase()} (a synthetic brain phantom with a tumour)…`);
    await writePhantomStudy(synthesizePhantom({ seed }), tmp);
    const ids = { t1: `demo-${key}-t1`, t1c: `demo-${key}-t1c`, t2: `demo-${key}-t2`, flair: `demo-${key}-flair` };
    for (const mod of ['t1', 't1c', 't2', 'flair'] as const) {
      rmSync(join(series, ids[mod]), { recursive: true, force: true });
      renameSync(join(tmp, mod), join(series, ids[mod]));
    }
    copyFileSync(join(tmp, 'truth.json'), join(DEMO, `truth-${key}.json`));
    rmSync(tmp, { recursive: true, force: true });
    studies.push({ series_id: `demo-phantom-${key}`, label, series_ids: ids });
  }
  writeFileSync(list, JSON.stringify(studies, null, 2) + '\n');
  return studies;
}

function buildWeb(studies: DemoStudy[]): void {
  const r = spawnSync(process.execPath, [join(ROOT, 'web/build.mjs')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error('building the web page failed (node web/build.mjs)');
  mkdirSync(join(WEB_DIST, 'demo'), { recursive: true });
  writeFileSync(join(WEB_DIST, 'demo/studies.json'), JSON.stringify(studies, null, 2) + '\n');
}

function startAgent(url: string, token: string): ChildProcess {
  const args = [
    '--import',
    'tsx',
    join(ROOT, 'lab-agent/src/cli/main.ts'),
    'run',
    '--api-url',
    url,
    '--runner',
    'onnx',
    '--source',
    `folder:${join(DEMO, 'series')}`,
    '--outbox',
    join(DATA, 'agent/outbox'),
    '--work-dir',
    join(DATA, 'agent/work'),
    '--agent-id',
    'local-demo-agent',
    '--grace-period',
    '5',
  ];
  // The token travels in the environment, not argv (which other users can read with ps).
  return spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, INFERENCE_AGENT_TOKEN: token } });
}

async function main(): Promise<void> {
  const secrets = ensureSecrets();
  for (const [k, v] of Object.entries(secrets)) process.env[k] ??= v;
  const port = process.env.PORT ?? '8080';
  const url = `http://127.0.0.1:${port}`;
  process.env.HOST ??= '127.0.0.1';
  process.env.SQLITE_PATH ??= join(DATA, 'jobs.sqlite');
  process.env.BLOB_DIR ??= join(DATA, 'blobs');
  process.env.PUBLIC_URL ??= url;
  process.env.WEB_DIR ??= WEB_DIST;
  process.env.WEB_TOKEN_HANDOFF ??= 'true';
  // Every status poll of the page would be an access-log line: show warnings and errors only.
  process.env.LOG_LEVEL ??= 'WARNING';

  const studies = await ensureDemoStudies();
  buildWeb(studies);

  await import('./serve.js');

  let agent: ChildProcess | null = null;
  if (process.env.LOCAL_AGENT !== 'false') {
    agent = startAgent(url, process.env.INFERENCE_AGENT_TOKENS!.split(',')[0]!);
    agent.on('exit', (code) => {
      if (code && code !== 130) say(`\n  The lab agent stopped (exit ${code}); the API and page keep running. Run \`npm run agent -- doctor\` to see why.`);
    });
    const stop = (signal: NodeJS.Signals) => agent?.kill(signal);
    process.once('SIGINT', () => stop('SIGTERM'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.on('exit', () => agent?.kill('SIGKILL'));
  }

  say('');
  say(`  Lab relay is running (everything on this machine, state in ${DATA})`);
  say(`    AI analysis page:  ${url}/`);
  say(`    Operations:        ${url}/dashboard.html`);
  say(`    API:               ${url}/api/healthz`);
  say(`    Tokens:            ${TOKENS} (the page is handed the client token)`);
  say(`    Lab agent:         ${agent ? 'local-demo-agent, demo model, demo studies from ' + join(DEMO, 'series') : 'not started (LOCAL_AGENT=false)'}`);
  say('  Ctrl+C stops everything.');
  say('');
}

main().catch((err: unknown) => {
  say(`npm start failed: ${(err as Error).message}`);
  process.exit(1);
});
