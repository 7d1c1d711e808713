/** @jest-environment ./test/model/ort-environment.cjs */
/**
 * PHI (issue 7): a phantom study carrying a made-up patient name, ID and birth date runs end to end —
 * the API (SQLite file) and the real agent with the onnx runner reading a folder source — and none of the
 * identity, in any form, reaches the job table, the API's answers (status, list, metrics), the results,
 * the outbox or work folders, or either side's logs. The SEG is the one place it belongs (it carries the
 * reference's patient module), which doubles as the proof that the identity really went through.
 * One job completes; one fails on a damaged series, so error texts are covered too.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { loadSeries } from '../../lab-agent/src/imaging/dicom/load-series.js';
import { synthesizePhantom } from '../../lab-agent/src/phantom/synthesize.js';
import { writePhantomStudy } from '../../lab-agent/src/phantom/write-study.js';
import { startAgent, waitFor, type InProcessAgent } from '../agent/helpers.js';
import { AGENT_TOKEN, startTestApi, type TestApi } from '../harness/api-server.js';
import { fixtureManifest, writeManifest } from '../model/helpers.js';
import { tempDir } from '../imaging/helpers.js';

const NAME = 'Doe^Jane';
const PID = 'PID-12345';
const BIRTH = '19700101';
/** Every form the identity could take in text: whole, its parts, other date spellings. */
const NEEDLES: [string, RegExp][] = [
  ['name', /Doe\^Jane/i],
  ['family name', /(?<![A-Za-z0-9])doe(?![A-Za-z0-9])/i],
  ['given name', /(?<![A-Za-z0-9])jane(?![A-Za-z0-9])/i],
  ['patient id', /PID-12345/i],
  ['id digits', /(?<![0-9])12345(?![0-9])/],
  ['birth date', /(?<![0-9])19700101(?![0-9])/],
  ['birth date (ISO)', /1970-01-01/],
  ['birth date (other)', /01\/01\/1970|1970\/01\/01|01\.01\.1970/],
];

function phiIn(text: string): string[] {
  return NEEDLES.filter(([, re]) => re.test(text)).map(([what]) => what);
}

/** Every file under a folder, with its content as latin1 text (missing folder: none). */
async function filesUnder(dir: string): Promise<[string, string][]> {
  if (!existsSync(dir)) return [];
  const out: [string, string][] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    out.push([p, (await fsp.readFile(p)).toString('latin1')]);
  }
  return out;
}

describe('patient identity stays out of everything but the SEG', () => {
  const tmp = tempDir('phi');
  const sqlitePath = path.join(tmp.dir, 'jobs.sqlite');
  const apiLines: string[] = [];
  let api: TestApi;
  let agent: InProcessAgent;
  let manifest: string;
  const S4 = ['t1', 't1c', 't2', 'flair'];

  beforeAll(async () => {
    const study = path.join(tmp.dir, 'study');
    await writePhantomStudy(synthesizePhantom({ seed: 5, size: [24, 24, 12] }), study, { patient: { name: NAME, id: PID, birthDate: BIRTH } });
    // A damaged copy of FLAIR (one file cut short) for the failing job: the folder source serves it as series "broken".
    const broken = path.join(study, 'broken');
    await fsp.cp(path.join(study, 'flair'), broken, { recursive: true });
    const victim = path.join(broken, (await fsp.readdir(broken)).sort()[3]!);
    await fsp.writeFile(victim, (await fsp.readFile(victim)).subarray(0, 900));
    manifest = await writeManifest(fixtureManifest());
    api = await startTestApi({ lines: apiLines, env: { SQLITE_PATH: sqlitePath, LEASE_SECONDS: '20', MAX_ATTEMPTS: '1' } });
    agent = await startAgent({
      apiUrl: api.url,
      token: AGENT_TOKEN,
      runner: 'onnx',
      source: `folder:${study}`,
      model: manifest,
      outbox: path.join(tmp.dir, 'outbox'),
      workDir: path.join(tmp.dir, 'work'),
      pollWait: '1',
      maxBackoff: '1',
      agentId: 'phi-agent',
      // Everything the agent can say, so DEBUG-only lines are covered too.
      logLevel: 'DEBUG',
    });
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    await api?.close();
    if (manifest) await fsp.rm(path.dirname(manifest), { recursive: true, force: true });
    tmp.cleanup();
  });

  async function finished(series: string) {
    return waitFor(`job ${series} to end`, async () => {
      const s = (await api.call('GET', `/api/inference/${series}/status`)).body;
      return s.status === 'completed' || s.status === 'failed' ? s : null;
    }, 90_000, 250);
  }

  it('the study really carries the identity (else this suite proves nothing)', async () => {
    const v = await loadSeries(path.join(tmp.dir, 'study', 'flair'));
    expect(v.dicom).toMatchObject({ PatientName: NAME, PatientID: PID, PatientBirthDate: BIRTH });
  });

  it('none of it in the job table, answers, results, outbox, work folder or logs; the SEG has it', async () => {
    expect((await api.call('POST', '/api/inference/phi-ok/start', { body: { series_ids: S4 } })).status).toBe(202);
    const ok = await finished('phi-ok');
    expect([ok.status, ok.error ?? null]).toEqual(['completed', null]);
    expect((await api.call('POST', '/api/inference/phi-broken/start', { body: { series_ids: ['t1', 't1c', 't2', 'broken'] } })).status).toBe(202);
    const bad = await finished('phi-broken');
    expect(bad.status).toBe('failed');
    expect(bad.error).toMatch(/not a readable DICOM file/);
    // The agent logs its acknowledgement just after the API records the result: wait for both lines.
    await waitFor('the agent to log both deliveries', () => agent.lines.filter((l) => l.event === 'delivered').length >= 2, 15_000);

    // Positive control: the SEG (downloaded through its signed URL) carries the reference's patient module.
    expect(Object.keys(ok.downloads ?? {})).toContain('seg');
    const seg = Buffer.from(await (await fetch(ok.downloads.seg.url)).arrayBuffer()).toString('latin1');
    expect(seg).toContain(NAME);
    expect(seg).toContain(PID);
    expect(seg).toContain(BIRTH);

    const places: Record<string, string> = {};
    places['status answers'] = JSON.stringify([ok, bad]);
    places['list answer'] = JSON.stringify((await api.call('GET', '/api/inference?limit=100')).body);
    places['metrics answer'] = JSON.stringify((await api.call('GET', '/api/metrics')).body);
    // The job table as rows, and the raw database files (freed pages and the WAL included).
    const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
    const db = new Sqlite(sqlitePath, { readonly: true, fileMustExist: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
      expect(tables.map((t) => t.name)).toContain('jobs');
      places['job table rows'] = JSON.stringify(tables.map((t) => db.prepare(`SELECT * FROM "${t.name}"`).all()));
    } finally {
      db.close();
    }
    expect(places['job table rows']).toContain('phi-ok');
    for (const f of [sqlitePath, `${sqlitePath}-wal`, `${sqlitePath}-journal`]) {
      if (!existsSync(f)) continue;
      const raw = (await fsp.readFile(f)).toString('latin1');
      // Raw pages hold binary noise: only the long, unambiguous forms are searched there.
      for (const s of [NAME, PID, BIRTH, '1970-01-01']) if (raw.includes(s)) places[`raw ${path.basename(f)}`] = s;
    }
    places['API log'] = apiLines.join('\n');
    places['agent log'] = JSON.stringify(agent.lines);
    for (const [f, text] of [...(await filesUnder(path.join(tmp.dir, 'outbox'))), ...(await filesUnder(path.join(tmp.dir, 'work')))]) places[f] = text;
    // The preview PNG is an output too: no identity in its text chunks (the pixels are not read here).
    if (ok.downloads?.preview) places['preview png'] = Buffer.from(await (await fetch(ok.downloads.preview.url)).arrayBuffer()).toString('latin1');

    expect(apiLines.length).toBeGreaterThan(5);
    expect(agent.lines.length).toBeGreaterThan(5);
    const leaks = Object.entries(places).flatMap(([where, text]) => phiIn(text).map((what) => `${what} in ${where}`));
    expect(leaks).toEqual([]);
  }, 120_000);
});
