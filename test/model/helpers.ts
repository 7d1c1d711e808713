import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** A valid manifest for the 2-channel fixture models; override fields per test. */
export function fixtureManifest(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'fixture',
    version: '0.0.1',
    onnx: path.join(FIXTURES, 'mix2to3.onnx'),
    input_name: 'input',
    output_name: 'output',
    channels: ['t1', 'flair'],
    normalisation: 'none',
    roi_size: [8, 8, 8],
    overlap: 0.5,
    output: { convention: 'sigmoid_tc_wt_et' },
    labels: [
      { value: 1, name: 'necrotic_core', type: { value: '6574001', scheme: 'SCT', meaning: 'Necrosis' } },
      { value: 2, name: 'edema', type: { value: '79654002', scheme: 'SCT', meaning: 'Edema' } },
      { value: 3, name: 'enhancing', type: { value: 'C113842', scheme: 'NCIt', meaning: 'Enhancing Lesion' } },
    ],
    ...over,
  };
}

export async function writeManifest(m: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'model-test-'));
  const p = path.join(dir, 'model.json');
  await writeFile(p, JSON.stringify(m));
  return p;
}

/** Deterministic pseudo-random floats (mulberry32), so failures reproduce. */
export function randomFloats(n: number, seed = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}
