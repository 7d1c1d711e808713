/**
 * Imaging pipeline benchmarks on a 4 x 155 x 240 x 240 int16 phantom written as real DICOM files:
 * series loading (MB/s) side by side with pydicom reading the same files into numpy, resampling,
 * SEG encoding, sliding-window throughput, the end-to-end time by stage, and peak RSS. The pipeline
 * runs in a child process so its peak RSS is its own.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { printTable, saveResults, type BenchRow } from './table.js';

const SIZE: [number, number, number] = [240, 240, 155];
const PYTHON = '/usr/bin/python3';

const PYDICOM_READ = `
import sys, os, time, numpy as np, pydicom
def load(d):
    ds = [pydicom.dcmread(os.path.join(d, f)) for f in os.listdir(d)]
    n = np.cross(np.array(ds[0].ImageOrientationPatient[:3], float), np.array(ds[0].ImageOrientationPatient[3:], float))
    ds.sort(key=lambda x: float(np.dot(n, np.array(x.ImagePositionPatient, float))))
    return np.stack([x.pixel_array.astype(np.float32) * float(getattr(x, 'RescaleSlope', 1)) + float(getattr(x, 'RescaleIntercept', 0)) for x in ds])
best = 1e9
for _ in range(3):
    t = time.perf_counter()
    vols = [load(d) for d in sys.argv[1:]]
    best = min(best, time.perf_counter() - t)
print(best)
`;

/** The child: loads, resamples, runs the whole pipeline once, prints its measurements as JSON. */
async function child(study: string): Promise<void> {
  const { loadSeries } = await import('../lab-agent/src/imaging/dicom/load-series.js');
  const { resampleToReference } = await import('../lab-agent/src/imaging/resample.js');
  const { DEMO_MODEL_DIR, loadModel } = await import('../lab-agent/src/imaging/model/load-model.js');
  const { segmentStudy } = await import('../lab-agent/src/imaging/pipeline.js');
  const mods = ['t1', 't1c', 't2', 'flair'] as const;
  let loadBest = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    for (const m of mods) await loadSeries(join(study, m), { name: m });
    loadBest = Math.min(loadBest, (performance.now() - t) / 1000);
  }
  const flair = await loadSeries(join(study, 'flair'), { name: 'flair' });
  const t1 = await loadSeries(join(study, 't1'), { name: 't1' });
  // A grid half a voxel off and slightly coarser forces the general trilinear path.
  const moved = { ...t1, origin: [t1.origin[0] + 0.5, t1.origin[1] + 0.5, t1.origin[2] + 0.5] as typeof t1.origin, spacing: [1.1, 1.1, 1.2] as typeof t1.spacing };
  let t = performance.now();
  resampleToReference(moved, flair);
  const resampleS = (performance.now() - t) / 1000;
  const model = await loadModel(DEMO_MODEL_DIR, { provider: 'cpu', intraOpThreads: 2 });
  const out = await segmentStudy(Object.fromEntries(mods.map((m) => [m, join(study, m)])), join(study, 'out'), { model, signal: new AbortController().signal });
  await model.release();
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ loadBest, resampleS, timings: out.result.timings, voxels: SIZE[0] * SIZE[1] * SIZE[2], peakRssMb }) + '\n');
}

function folderBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

export async function runImagingBench(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'imaging-bench-'));
  try {
    const { synthesizePhantom } = await import('../lab-agent/src/phantom/synthesize.js');
    const { writePhantomStudy } = await import('../lab-agent/src/phantom/write-study.js');
    await writePhantomStudy(synthesizePhantom({ seed: 3001, size: SIZE, spacing: [1, 1, 1] }), dir);
    const mb = ['t1', 't1c', 't2', 'flair'].reduce((n, m) => n + folderBytes(join(dir, m)), 0) / 2 ** 20;
    const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', dir], { encoding: 'utf8', maxBuffer: 1 << 20 });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { loadBest: number; resampleS: number; timings: Record<string, number>; voxels: number; peakRssMb: number };
    const rows: BenchRow[] = [];
    const loadMBs = mb / r.loadBest;
    rows.push({ name: `series loading, 4 x 240x240x155 int16 (${mb.toFixed(0)} MB)`, value: loadMBs, unit: 'MB/s' });
    let pydicomS = NaN;
    try {
      pydicomS = Number(execFileSync(PYTHON, ['-c', PYDICOM_READ, ...['t1', 't1c', 't2', 'flair'].map((m) => join(dir, m))], { encoding: 'utf8' }).trim());
    } catch {
      console.warn('SKIPPED: pydicom comparison (/usr/bin/python3 with pydicom and numpy not available)');
    }
    if (Number.isFinite(pydicomS)) {
      rows.push({ name: 'pydicom reading the same files into numpy', value: mb / pydicomS, unit: 'MB/s' });
      const ratio = pydicomS / r.loadBest;
      rows.push({ name: 'loading speed vs pydicom', value: ratio, unit: 'x', target: '>= 2x', pass: ratio >= 2 });
    }
    rows.push({ name: 'resampling one 240x240x155 series (trilinear, general path)', value: r.resampleS * 1000, unit: 'ms' });
    rows.push({ name: 'SEG encoding', value: r.timings.write_seg! * 1000, unit: 'ms' });
    rows.push({ name: 'sliding-window inference (demo model, CPU, 2 threads)', value: r.voxels / r.timings.infer!, unit: 'voxels/s' });
    for (const [stage, s] of Object.entries(r.timings)) rows.push({ name: `end to end: ${stage}`, value: s, unit: 's' });
    const notModel = Object.entries(r.timings).filter(([k]) => k !== 'infer' && k !== 'total').reduce((n, [, v]) => n + v, 0);
    rows.push({ name: 'all stages but the model', value: notModel, unit: 's', target: '< 2 s', pass: notModel < 2 });
    rows.push({ name: 'peak RSS of the pipeline process', value: r.peakRssMb, unit: 'MB', target: '< 1536 MB', pass: r.peakRssMb < 1536 });
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  await child(process.argv[3]!);
  process.exit(0);
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await runImagingBench();
  printTable('Imaging pipeline', rows);
  console.log(`results: ${saveResults('imaging', rows)}`);
  process.exit(0);
}
