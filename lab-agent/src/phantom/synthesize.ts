/**
 * A deterministic brain-like MRI phantom with a glioma-like tumour, for tests, benchmarks and training
 * the demo model. Anatomy is defined in mm relative to the field of view, so the same seed gives the
 * same anatomy at different sizes/spacings (up to sampling).
 */
import { createRng, type Rng } from './random.js';
import { SmoothField } from './smooth-field.js';
import type { Vec3 } from '../imaging/volume.js';

export const MODALITIES = ['t1', 't1c', 't2', 'flair'] as const;
export type Modality = (typeof MODALITIES)[number];

/** Label values of the phantom's ground truth (BraTS 2023 style). */
export const LABEL = { background: 0, necrotic_core: 1, edema: 2, enhancing: 3 } as const;

export interface PhantomOptions {
  seed: number;
  /** [nx, ny, nz]; default [96, 96, 64]. */
  size?: Vec3;
  /** mm; default [2, 2, 2]. */
  spacing?: Vec3;
}

export interface PhantomTruth {
  volumes_ml: { necrotic_core: number; edema: number; enhancing: number };
  whole_tumor_ml: number;
  voxels: { necrotic_core: number; edema: number; enhancing: number; whole_tumor: number };
}

export interface Phantom {
  seed: number;
  size: Vec3;
  spacing: Vec3;
  /** Intensities in arbitrary MR units (0..~1500), x fastest, then y, then z. */
  channels: Record<Modality, Float32Array>;
  labels: Uint8Array;
  truth: PhantomTruth;
}

// Tissue classes used to look up intensities.
const AIR = 0, SCALP = 1, SKULL = 2, CSF = 3, GM = 4, WM = 5, NECROSIS = 6, EDEMA = 7, ENHANCING = 8;

// Mean intensity per tissue [air, scalp, skull, csf, gm, wm, necrosis, oedema, enhancing], BraTS-like:
// FLAIR: oedema brightest, CSF suppressed; T1c: enhancing rim brightest; T2: fluid, oedema and necrosis
// bright; T1: tumour darker than white matter.
const CONTRAST: Record<Modality, readonly number[]> = {
  t1: [0, 900, 80, 250, 600, 850, 300, 480, 560],
  t1c: [0, 900, 80, 260, 620, 860, 280, 520, 1350],
  t2: [0, 550, 60, 1400, 800, 550, 1250, 1150, 850],
  flair: [0, 650, 60, 180, 750, 550, 700, 1300, 950],
};
const NOISE_SIGMA = 22;
const TEXTURE = 0.04;

interface TumourShape {
  centre: Vec3;
  radius: number;
  coreFraction: number;
  edemaScale: number;
}

export function synthesizePhantom(opts: PhantomOptions): Phantom {
  const size: Vec3 = opts.size ?? [96, 96, 64];
  const spacing: Vec3 = opts.spacing ?? [2, 2, 2];
  for (let a = 0; a < 3; a++) {
    if (!Number.isInteger(size[a]) || size[a]! < 4) throw new Error(`phantom size must be integers >= 4, got ${size.join(',')}`);
    if (!(spacing[a]! > 0)) throw new Error(`phantom spacing must be positive, got ${spacing.join(',')}`);
  }
  const [nx, ny, nz] = size;
  const rng = createRng(opts.seed);

  // Coordinates (mm) of voxel centres relative to the centre of the field of view.
  const axis = (n: number, s: number): Float64Array => Float64Array.from({ length: n }, (_, i) => (i - (n - 1) / 2) * s);
  const xs = axis(nx, spacing[0]);
  const ys = axis(ny, spacing[1]);
  const zs = axis(nz, spacing[2]);
  const fov: Vec3 = [nx * spacing[0], ny * spacing[1], nz * spacing[2]];

  // Brain ellipsoid semi-axes, with a little per-seed variation.
  const brain: Vec3 = [fov[0] * rng.uniform(0.37, 0.4), fov[1] * rng.uniform(0.4, 0.43), fov[2] * rng.uniform(0.37, 0.4)];
  const tumour = placeTumour(rng, brain);
  const gyri = new SmoothField(rng, xs, 8, 12, 30);
  const tumourNoise = new SmoothField(rng, xs, 6, tumour.radius * 1.2, tumour.radius * 3);
  const edemaNoise = new SmoothField(rng, xs, 8, tumour.radius * 0.8, tumour.radius * 2.5);
  const texture = new SmoothField(rng, xs, 6, 6, 20);
  const bias = MODALITIES.map(() => ({
    g: [rng.uniform(-0.08, 0.08), rng.uniform(-0.08, 0.08), rng.uniform(-0.08, 0.08)] as Vec3,
    q: rng.uniform(-0.08, 0.04),
  }));
  // Lateral ventricles: two ellipsoids either side of the midline, long antero-posteriorly.
  const ventricles = [-1, 1].map((side) => ({
    c: [side * brain[0] * rng.uniform(0.12, 0.16), -brain[1] * rng.uniform(0.0, 0.08), brain[2] * rng.uniform(0.05, 0.15)] as Vec3,
    r: [brain[0] * rng.uniform(0.09, 0.12), brain[1] * rng.uniform(0.3, 0.4), brain[2] * rng.uniform(0.14, 0.2)] as Vec3,
  }));

  const n = nx * ny * nz;
  const labels = new Uint8Array(n);
  const tissue = new Uint8Array(n);
  const tex = new Float32Array(n);
  const rowG = new Float64Array(nx);
  const rowT = new Float64Array(nx);
  const rowE = new Float64Array(nx);
  const rowX = new Float64Array(nx);
  // Rows further than this from the tumour centre cannot hold tumour or oedema: skip its noise there.
  const reach = tumour.radius * tumour.edemaScale * 1.6;

  for (let k = 0; k < nz; k++) {
    const z = zs[k]!;
    for (let j = 0; j < ny; j++) {
      const y = ys[j]!;
      gyri.row(y, z, rowG);
      texture.row(y, z, rowX);
      const dyz = Math.hypot(y - tumour.centre[1], z - tumour.centre[2]);
      const nearTumour = dyz < reach;
      if (nearTumour) {
        tumourNoise.row(y, z, rowT);
        edemaNoise.row(y, z, rowE);
      }
      const base = nx * (j + ny * k);
      for (let i = 0; i < nx; i++) {
        const x = xs[i]!;
        const r = Math.sqrt((x / brain[0]) ** 2 + (y / brain[1]) ** 2 + (z / brain[2]) ** 2);
        let t = AIR;
        if (r < 1.0) {
          t = r > 0.8 + 0.05 * rowG[i]! ? GM : WM;
          for (const v of ventricles) {
            if (((x - v.c[0]) / v.r[0]) ** 2 + ((y - v.c[1]) / v.r[1]) ** 2 + ((z - v.c[2]) / v.r[2]) ** 2 < 1) t = CSF;
          }
          if (nearTumour) {
            const d = Math.sqrt((x - tumour.centre[0]) ** 2 + dyz * dyz);
            // Additive, smooth perturbations of the normalised distance: irregular but connected shapes.
            const s = d / tumour.radius + 0.15 * rowT[i]!;
            if (s < tumour.coreFraction) {
              t = NECROSIS;
              labels[base + i] = LABEL.necrotic_core;
            } else if (s < 1) {
              t = ENHANCING;
              labels[base + i] = LABEL.enhancing;
            } else if ((d / (tumour.radius * tumour.edemaScale) + 0.12 * rowE[i]! < 1 || d < tumour.radius * 1.15) && t !== CSF) {
              // Oedema surrounds the tumour: at least a thin shell, then an irregular margin.
              t = EDEMA;
              labels[base + i] = LABEL.edema;
            }
          }
        } else if (r < 1.05) t = CSF;
        else if (r < 1.12) t = SKULL;
        else if (r < 1.2) t = SCALP;
        tissue[base + i] = t;
        tex[base + i] = rowX[i]!;
      }
    }
  }

  const channels = {} as Record<Modality, Float32Array>;
  MODALITIES.forEach((m, mi) => {
    const out = new Float32Array(n);
    const contrast = CONTRAST[m];
    const b = bias[mi]!;
    let p = 0;
    for (let k = 0; k < nz; k++) {
      const zn = zs[k]! / (fov[2] / 2);
      for (let j = 0; j < ny; j++) {
        const yn = ys[j]! / (fov[1] / 2);
        for (let i = 0; i < nx; i++, p++) {
          const t = tissue[p]!;
          if (t === AIR) continue; // background stays exactly 0 (no signal outside the head)
          const xn = xs[i]! / (fov[0] / 2);
          const field = 1 + b.g[0] * xn + b.g[1] * yn + b.g[2] * zn + b.q * (xn * xn + yn * yn + zn * zn);
          const v = contrast[t]! * field * (1 + TEXTURE * tex[p]!) + NOISE_SIGMA * rng.gauss();
          out[p] = v > 0 ? v : 0;
        }
      }
    }
    channels[m] = out;
  });

  return { seed: opts.seed, size: [nx, ny, nz], spacing: [...spacing], channels, labels, truth: truthOf(labels, spacing) };
}

/** A tumour centre and size that keep the enhancing tumour inside the brain, in one hemisphere. */
function placeTumour(rng: Rng, brain: Vec3): TumourShape {
  const mean = Math.cbrt(brain[0] * brain[1] * brain[2]);
  const radius = mean * rng.uniform(0.17, 0.28);
  const coreFraction = rng.uniform(0.5, 0.7);
  const edemaScale = rng.uniform(1.5, 2.0);
  const side = rng.next() < 0.5 ? -1 : 1;
  const minAxis = Math.min(...brain);
  for (let attempt = 0; ; attempt++) {
    const centre: Vec3 = [side * brain[0] * rng.uniform(0.15, 0.45), brain[1] * rng.uniform(-0.4, 0.4), brain[2] * rng.uniform(-0.3, 0.3)];
    const r = Math.sqrt((centre[0] / brain[0]) ** 2 + (centre[1] / brain[1]) ** 2 + (centre[2] / brain[2]) ** 2);
    // Shrink the tumour on the (rare) unlucky draws rather than loop forever.
    const scale = attempt < 50 ? 1 : 0.7;
    if (r + (radius * scale * 1.3) / minAxis < 0.9) return { centre, radius: radius * scale, coreFraction, edemaScale };
    if (attempt > 200) return { centre: [side * brain[0] * 0.25, 0, 0], radius: minAxis * 0.3, coreFraction, edemaScale };
  }
}

/** Subregion volumes from voxel counts x voxel volume (mm^3 -> mL). */
export function truthOf(labels: Uint8Array, spacing: Vec3): PhantomTruth {
  const counts = [0, 0, 0, 0];
  for (let p = 0; p < labels.length; p++) counts[labels[p]!]!++;
  const ml = (spacing[0] * spacing[1] * spacing[2]) / 1000;
  const [, core, edema, enh] = counts as [number, number, number, number];
  const round = (v: number): number => Math.round(v * 1000) / 1000;
  return {
    volumes_ml: { necrotic_core: round(core * ml), edema: round(edema * ml), enhancing: round(enh * ml) },
    whole_tumor_ml: round((core + edema + enh) * ml),
    voxels: { necrotic_core: core, edema, enhancing: enh, whole_tumor: core + edema + enh },
  };
}
