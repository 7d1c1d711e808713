/**
 * The real Orthanc from Debian (`orthanc`, `orthanc-dicomweb`) for tests and benchmarks: started on
 * loopback with its own JSON config in a temp dir (free HTTP and DICOM ports, authentication on, remote
 * access off, storage in the temp dir, DICOMweb at /dicom-web/), stopped and removed afterwards.
 * A machine without Orthanc skips the suites loudly (ORTHANC_BIN overrides the binary's path).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const ORTHANC_BIN = process.env.ORTHANC_BIN ?? '/usr/sbin/Orthanc';
export const ORTHANC_PLUGINS = process.env.ORTHANC_PLUGINS ?? '/usr/share/orthanc/plugins';
export const DICOMWEB_PLUGIN = path.join(ORTHANC_PLUGINS, 'libOrthancDicomWeb.so');

export const hasOrthanc = existsSync(ORTHANC_BIN);
export const hasDicomWebPlugin = hasOrthanc && existsSync(DICOMWEB_PLUGIN);

/** Says loudly, once per suite, why it is skipped. */
export function warnIfNoOrthanc(suite: string, needDicomWeb = false): void {
  if (!hasOrthanc) console.warn(`\n*** SKIPPED: Orthanc not installed (${ORTHANC_BIN} missing; apt-get install orthanc orthanc-dicomweb): ${suite} ***\n`);
  else if (needDicomWeb && !hasDicomWebPlugin) console.warn(`\n*** SKIPPED: Orthanc DICOMweb plugin not installed (${DICOMWEB_PLUGIN}): ${suite} ***\n`);
}

import { freePort } from './firestore-emulator.js';
export { freePort };

export interface OrthancServer {
  /** REST base, e.g. http://127.0.0.1:PORT */
  url: string;
  /** DICOMweb root without a trailing slash, e.g. http://127.0.0.1:PORT/dicom-web */
  dicomWebUrl: string;
  port: number;
  user: string;
  password: string;
  dir: string;
  /** fetch against Orthanc with the test user's credentials. */
  call(method: string, p: string, body?: Uint8Array | string, headers?: Record<string, string>): Promise<Response>;
  json<T = unknown>(method: string, p: string, body?: Uint8Array | string): Promise<T>;
  /** POST /instances; returns Orthanc's answer. */
  upload(file: string): Promise<{ ID: string; ParentSeries: string; ParentStudy: string; Status: string }>;
  /** Kills the server, keeping the temp dir (for "Orthanc went down" tests); start() brings it back on the same port. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Kills the server and removes the temp dir. */
  stop(): Promise<void>;
}

export interface UploadedSeries {
  /** Orthanc series ID. */
  id: string;
  seriesInstanceUID: string;
  studyInstanceUID: string;
  files: string[];
}

export async function startOrthanc(o: { user?: string; password?: string; timeoutMs?: number } = {}): Promise<OrthancServer> {
  const user = o.user ?? 'lab';
  const password = o.password ?? 'secret-pw-123';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'orthanc-test-'));
  const port = await freePort();
  const dicomPort = await freePort();
  const config = {
    Name: 'lab-relay-test',
    StorageDirectory: path.join(dir, 'storage'),
    IndexDirectory: path.join(dir, 'index'),
    HttpPort: port,
    DicomPort: dicomPort,
    DicomServerEnabled: true,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: true,
    RegisteredUsers: { [user]: password },
    // Fewer threads than the default 50: the test machine is small and shared.
    HttpThreadsCount: 8,
    ConcurrentJobs: 1,
    Plugins: hasDicomWebPlugin ? [DICOMWEB_PLUGIN] : [],
    DicomWeb: { Enable: true, Root: '/dicom-web/' },
  };
  const configFile = path.join(dir, 'orthanc.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const url = `http://127.0.0.1:${port}`;
  const auth = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  let child: ChildProcess | undefined;
  let log = '';

  const call = (method: string, p: string, body?: Uint8Array | string, headers: Record<string, string> = {}) =>
    fetch(url + p, { method, headers: { authorization: auth, ...headers }, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(30_000) });

  const start = async () => {
    log = '';
    const c = spawn(ORTHANC_BIN, [configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    // Should the test process exit without afterAll (a crash, a forced exit), Orthanc goes with it.
    const onExit = () => c.kill('SIGKILL');
    process.once('exit', onExit);
    c.once('exit', () => process.removeListener('exit', onExit));
    const keep = (d: Buffer) => (log = (log + d.toString()).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const deadline = Date.now() + (o.timeoutMs ?? 30_000);
    for (;;) {
      if (child.exitCode !== null) throw new Error(`Orthanc exited with ${child.exitCode}: ${log}`);
      try {
        const r = await call('GET', '/system');
        if (r.ok) {
          await r.arrayBuffer();
          return;
        }
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await kill();
        throw new Error(`Orthanc did not answer on ${url}: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await gone;
  };

  await start();
  return {
    url,
    dicomWebUrl: `${url}/dicom-web`,
    port,
    user,
    password,
    dir,
    call,
    async json<T>(method: string, p: string, body?: Uint8Array | string) {
      const r = await call(method, p, body);
      const text = await r.text();
      if (!r.ok) throw new Error(`Orthanc ${method} ${p}: ${r.status} ${text.slice(0, 200)}`);
      return JSON.parse(text) as T;
    },
    async upload(file: string) {
      const r = await call('POST', '/instances', await readFile(file), { 'content-type': 'application/dicom' });
      const text = await r.text();
      if (!r.ok) throw new Error(`Orthanc POST /instances ${file}: ${r.status} ${text.slice(0, 200)}`);
      return JSON.parse(text);
    },
    kill,
    start,
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Uploads a phantom study written by writePhantomStudy (DIR/t1, t1c, t2, flair) and maps each series to
 * its Orthanc ID, SeriesInstanceUID and StudyInstanceUID.
 */
export async function uploadStudy(orthanc: OrthancServer, studyDir: string, series = ['t1', 't1c', 't2', 'flair']): Promise<Record<string, UploadedSeries>> {
  const out: Record<string, UploadedSeries> = {};
  for (const s of series) {
    const dir = path.join(studyDir, s);
    const files = (await readdir(dir)).filter((f) => !f.startsWith('.')).sort().map((f) => path.join(dir, f));
    let id = '';
    // A few uploads at a time: fast enough, and gentle on a shared machine.
    for (let i = 0; i < files.length; i += 8) {
      const answers = await Promise.all(files.slice(i, i + 8).map((f) => orthanc.upload(f)));
      id = answers[0]!.ParentSeries;
    }
    const info = await orthanc.json<{ MainDicomTags: { SeriesInstanceUID: string }; ParentStudy: string }>('GET', `/series/${id}`);
    const study = await orthanc.json<{ MainDicomTags: { StudyInstanceUID: string } }>('GET', `/studies/${info.ParentStudy}`);
    out[s] = { id, seriesInstanceUID: info.MainDicomTags.SeriesInstanceUID, studyInstanceUID: study.MainDicomTags.StudyInstanceUID, files };
  }
  return out;
}
