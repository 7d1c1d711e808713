/**
 * Writes synthetic phantoms (lab-agent/src/phantom/synthesize.ts) as raw arrays for models/train_demo.py.
 *
 *   npx tsx models/dump-phantoms.ts --out DIR --seeds 1-40 [--channels t1c,t1,t2,flair] [--normalisation zscore_nonzero]
 *
 * Per seed: DIR/seed-N.image.f32 (float32, channels in the given order, each x fastest, then y, then z,
 * already normalised by the same TypeScript function the pipeline uses) and DIR/seed-N.labels.u8 (0 bg,
 * 1 necrotic core, 2 oedema, 3 enhancing); DIR/index.json lists them with size, spacing and truth.
 * Geometry varies with the seed (voxel size 1.25..3 mm, two fields of view) so the model does not learn
 * one resolution.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MODALITIES, synthesizePhantom, type Modality } from '../lab-agent/src/phantom/synthesize.js';
import { normaliseInPlace, type Normalisation } from '../lab-agent/src/imaging/normalise.js';
import type { Vec3 } from '../lab-agent/src/imaging/volume.js';

const SPACINGS = [1.25, 1.5, 2, 2.5, 3];
const FOVS: Vec3[] = [
  [192, 192, 128],
  [240, 240, 156],
];

/** The geometry used for a seed: deterministic, cycling through voxel sizes and fields of view. */
export function geometryForSeed(seed: number): { size: Vec3; spacing: Vec3 } {
  const s = SPACINGS[(seed - 1) % SPACINGS.length]!;
  const fov = FOVS[Math.floor((seed - 1) / SPACINGS.length) % FOVS.length]!;
  return { size: [Math.round(fov[0] / s), Math.round(fov[1] / s), Math.round(fov[2] / s)], spacing: [s, s, s] };
}

function parseSeeds(spec: string): number[] {
  const seeds: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`bad --seeds '${spec}': use e.g. 1-40 or 3,5,7`);
    const a = Number(m[1]);
    const b = m[2] ? Number(m[2]) : a;
    for (let s = a; s <= b; s++) seeds.push(s);
  }
  return seeds;
}

/** The last commit of the phantom synthesizer (+ "-dirty" when changed since), so a model names its data. */
function synthesizerVersion(): string {
  try {
    const git = (...a: string[]) => execFileSync('git', a, { encoding: 'utf8' }).trim();
    const files = ['synthesize.ts', 'random.ts', 'smooth-field.ts'].map((f) => `lab-agent/src/phantom/${f}`);
    const commit = git('log', '-1', '--format=%h', '--', ...files);
    return git('status', '--porcelain', '--', ...files) ? `${commit}-dirty` : commit;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      seeds: { type: 'string', default: '1-40' },
      channels: { type: 'string', default: 't1c,t1,t2,flair' },
      normalisation: { type: 'string', default: 'zscore_nonzero' },
    },
  });
  if (!values.out) throw new Error('--out DIR is required');
  const channels = values.channels.split(',') as Modality[];
  for (const c of channels) if (!MODALITIES.includes(c)) throw new Error(`unknown modality '${c}' in --channels`);
  const normalisation = values.normalisation as Normalisation;
  await mkdir(values.out, { recursive: true });

  const index: unknown[] = [];
  for (const seed of parseSeeds(values.seeds)) {
    const { size, spacing } = geometryForSeed(seed);
    const p = synthesizePhantom({ seed, size, spacing });
    const n = size[0] * size[1] * size[2];
    const image = new Float32Array(channels.length * n);
    channels.forEach((c, i) => image.set(p.channels[c], i * n));
    normaliseInPlace(image, channels.length, normalisation);
    const base = `seed-${seed}`;
    await writeFile(path.join(values.out, `${base}.image.f32`), new Uint8Array(image.buffer));
    await writeFile(path.join(values.out, `${base}.labels.u8`), p.labels);
    index.push({ seed, size, spacing, image: `${base}.image.f32`, labels: `${base}.labels.u8`, truth: p.truth });
    process.stdout.write(`seed ${seed}: ${size.join('x')} @ ${spacing[0]} mm, whole tumour ${p.truth.whole_tumor_ml} mL\n`);
  }
  await writeFile(
    path.join(values.out, 'index.json'),
    JSON.stringify({ layout: 'channel-major, x fastest then y then z', channels, normalisation, synthesizer: synthesizerVersion(), phantoms: index }, null, 1),
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
