/**
 * Image source benchmark: time to fetch a 4-series study (4 x 155 slices of 240x240 int16, ~71 MB, the
 * BraTS grid) from a real Orthanc on loopback over REST (one request per instance, 4 in flight) and over
 * DICOMweb (one multipart/related stream per series), against copying it from disk (folder source).
 * Runs alone with `npx tsx bench/sources-bench.ts`; BENCH_SOURCES_SIZE=96,96,64 for a quick run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Vec3 } from '../lab-agent/src/imaging/volume.js';
import { synthesizePhantom } from '../lab-agent/src/phantom/synthesize.js';
import { writePhantomStudy } from '../lab-agent/src/phantom/write-study.js';
import { DicomWebSource } from '../lab-agent/src/sources/dicomweb.js';
import { fetchStudy } from '../lab-agent/src/sources/fetch-study.js';
import { FolderSource } from '../lab-agent/src/sources/folder.js';
import { OrthancSource } from '../lab-agent/src/sources/orthanc.js';
import type { SeriesSource } from '../lab-agent/src/sources/types.js';
import { hasDicomWebPlugin, hasOrthanc, startOrthanc, uploadStudy } from '../test/harness/orthanc.js';
import { machine, printTable, type BenchRow } from './table.js';

const MODS = ['t1', 't1c', 't2', 'flair'] as const;

function size(): Vec3 {
  const s = process.env.BENCH_SOURCES_SIZE?.split(',').map(Number);
  return s && s.length === 3 && s.every((x) => Number.isInteger(x) && x > 0) ? (s as Vec3) : [240, 240, 155];
}

/** Median seconds of `runs` fetches of the whole study into fresh job dirs (removed after each). */
async function timeFetch(source: SeriesSource, ids: string[], tmp: string, runs: number): Promise<{ seconds: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const job = await mkdtemp(path.join(tmp, 'job-'));
    const t0 = performance.now();
    await fetchStudy(source, ids, job, new AbortController().signal, (p) => (bytes = p.bytes));
    times.push((performance.now() - t0) / 1000);
    await rm(job, { recursive: true, force: true });
  }
  times.sort((a, b) => a - b);
  return { seconds: times[Math.floor(times.length / 2)]!, bytes };
}

export async function runSourcesBench(): Promise<BenchRow[]> {
  const grid = size();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'sources-bench-'));
  const rows: BenchRow[] = [];
  const runs = Number(process.env.BENCH_SOURCES_RUNS ?? 3);
  try {
    const studyDir = path.join(tmp, 'study');
    await writePhantomStudy(synthesizePhantom({ seed: 42, size: grid, spacing: [1, 1, 1] }), studyDir);
    const label = `${grid.join('x')} x 4 series`;

    const disk = await timeFetch(new FolderSource(studyDir), [...MODS], tmp, runs);
    const mb = disk.bytes / 2 ** 20;
    rows.push({ name: `study size (${label})`, value: Math.round(mb * 10) / 10, unit: 'MiB' });
    rows.push({ name: 'folder (copy from disk)', value: disk.seconds, unit: 's' });

    if (!hasOrthanc) {
      console.warn(`SKIPPED: Orthanc not installed: only the folder source was measured`);
      return rows;
    }
    const orthanc = await startOrthanc();
    try {
      const t0 = performance.now();
      const series = await uploadStudy(orthanc, studyDir);
      rows.push({ name: 'upload to Orthanc (POST /instances, 8 in flight; setup)', value: (performance.now() - t0) / 1000, unit: 's' });
      const auth = { kind: 'basic' as const, user: orthanc.user, password: orthanc.password };

      const rest = await timeFetch(new OrthancSource({ baseUrl: orthanc.url, auth, concurrency: 4 }), MODS.map((m) => series[m]!.id), tmp, runs);
      rows.push({ name: 'Orthanc REST (/instances/{id}/file, 4 in flight)', value: rest.seconds, unit: 's', target: '< 5 s', pass: rest.seconds < 5 });
      const serial = await timeFetch(new OrthancSource({ baseUrl: orthanc.url, auth, concurrency: 1 }), MODS.map((m) => series[m]!.id), tmp, 1);
      rows.push({ name: 'Orthanc REST, 1 in flight per series', value: serial.seconds, unit: 's' });
      rows.push({ name: 'Orthanc REST throughput', value: mb / rest.seconds, unit: 'MiB/s' });
      rows.push({ name: 'Orthanc REST / disk', value: rest.seconds / disk.seconds, unit: 'x' });

      if (hasDicomWebPlugin) {
        const ids = MODS.map((m) => `${series[m]!.studyInstanceUID}:${series[m]!.seriesInstanceUID}`);
        const web = await timeFetch(new DicomWebSource({ baseUrl: orthanc.dicomWebUrl, auth }), ids, tmp, runs);
        rows.push({ name: 'DICOMweb WADO-RS (multipart, 2 series at a time)', value: web.seconds, unit: 's', target: '< 5 s', pass: web.seconds < 5 });
        rows.push({ name: 'DICOMweb throughput', value: mb / web.seconds, unit: 'MiB/s' });
        rows.push({ name: 'DICOMweb / disk', value: web.seconds / disk.seconds, unit: 'x' });
      } else {
        console.warn('SKIPPED: Orthanc DICOMweb plugin not installed: DICOMweb not measured');
      }
    } finally {
      await orthanc.stop();
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(`machine: ${machine()}`);
  printTable('Image sources: fetch a 4-series study', await runSourcesBench());
}
