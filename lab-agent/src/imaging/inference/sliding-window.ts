/**
 * Sliding-window inference with Gaussian-weighted blending (as MONAI's `sliding_window_inference` with
 * mode="gaussian", sigma_scale=0.125).
 *
 * Memory: the input, one output accumulator [K, N], one weight accumulator [N], and one window in and out.
 * Windows are streamed one at a time; nothing else proportional to the volume is allocated.
 *
 * Layout everywhere here: channel-major, then x fastest, y, z (the Volume layout). The predictor receives
 * and returns windows in that layout; adapting to a model's tensor layout is the predictor's job.
 */
import type { Vec3 } from '../volume.js';

/** A multi-channel volume: `data[c * nx*ny*nz + x + nx*(y + ny*z)]`. */
export interface ChannelVolume {
  data: Float32Array;
  channels: number;
  dims: Vec3;
}

/** Runs the model on one window (layout as ChannelVolume with dims = roi) and returns its K channels. */
export type WindowPredictor = (window: Float32Array, channels: number, roi: Vec3) => Promise<{ data: Float32Array; channels: number }>;

export interface SlidingWindowOptions {
  roiSize: Vec3;
  /** Fraction of the roi shared by neighbouring windows, 0..<1 (MONAI default 0.25; BraTS bundle 0.5). */
  overlap: number;
  /** Gaussian sigma as a fraction of the roi size (MONAI: 0.125). */
  sigmaScale?: number;
  signal?: AbortSignal;
  onProgress?: (windowsDone: number, windowsTotal: number) => void;
}

/** Start offsets along one axis, in the (possibly padded) frame of `size` = max(volume, roi). */
export function windowStarts(size: number, roi: number, overlap: number): number[] {
  if (size <= roi) return [0];
  const interval = Math.max(1, Math.floor(roi * (1 - overlap)));
  const n = Math.ceil((size - roi) / interval) + 1;
  const starts: number[] = [];
  for (let i = 0; i < n; i++) starts.push(Math.min(i * interval, size - roi));
  return [...new Set(starts)];
}

/** Separable Gaussian importance map over the roi, max 1, floored so no voxel gets a zero weight. */
export function gaussianImportance(roi: Vec3, sigmaScale = 0.125): Float32Array {
  const axis = (n: number): Float64Array => {
    const sigma = Math.max(n * sigmaScale, 1e-6);
    const c = (n - 1) / 2;
    const w = new Float64Array(n);
    for (let i = 0; i < n; i++) w[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
    return w;
  };
  const [wx, wy, wz] = [axis(roi[0]), axis(roi[1]), axis(roi[2])];
  const out = new Float32Array(roi[0] * roi[1] * roi[2]);
  let p = 0;
  for (let z = 0; z < roi[2]; z++)
    for (let y = 0; y < roi[1]; y++) {
      const wzy = wz[z]! * wy[y]!;
      for (let x = 0; x < roi[0]; x++) out[p++] = Math.max(wzy * wx[x]!, 1e-6);
    }
  return out;
}

export async function slidingWindowInference(input: ChannelVolume, predict: WindowPredictor, o: SlidingWindowOptions): Promise<ChannelVolume> {
  const { dims, channels: C, data } = input;
  const [nx, ny, nz] = dims;
  const n = nx * ny * nz;
  if (data.length !== C * n) throw new Error(`input has ${data.length} values, expected ${C} x ${nx} x ${ny} x ${nz} = ${C * n}`);
  if (!(o.overlap >= 0 && o.overlap < 1)) throw new Error(`overlap must be in [0, 1), got ${o.overlap}`);
  const roi = o.roiSize;
  const [rx, ry, rz] = roi;
  const rn = rx * ry * rz;
  // A volume smaller than the roi is padded (with 0, the background after z-score normalisation)
  // symmetrically, as MONAI does; the padding is virtual: reads outside the volume give 0.
  const padded: Vec3 = [Math.max(nx, rx), Math.max(ny, ry), Math.max(nz, rz)];
  const before: Vec3 = [Math.floor((padded[0] - nx) / 2), Math.floor((padded[1] - ny) / 2), Math.floor((padded[2] - nz) / 2)];
  const sx = windowStarts(padded[0], rx, o.overlap);
  const sy = windowStarts(padded[1], ry, o.overlap);
  const sz = windowStarts(padded[2], rz, o.overlap);
  const total = sx.length * sy.length * sz.length;
  const importance = gaussianImportance(roi, o.sigmaScale ?? 0.125);

  const win = new Float32Array(C * rn);
  const weight = new Float32Array(n);
  let out: Float32Array | undefined;
  let K = 0;
  let done = 0;

  for (const z0 of sz)
    for (const y0 of sy)
      for (const x0 of sx) {
        o.signal?.throwIfAborted();
        // Volume coordinates of the window's first voxel (negative inside the padding).
        const vx0 = x0 - before[0];
        const vy0 = y0 - before[1];
        const vz0 = z0 - before[2];
        // In-volume x range of each window row, the same for all rows.
        const xa = Math.max(0, -vx0);
        const xb = Math.min(rx, nx - vx0);
        extractWindow(data, C, dims, win, roi, vx0, vy0, vz0, xa, xb);
        const pred = await predict(win, C, roi);
        if (pred.data.length !== pred.channels * rn) {
          throw new Error(`model returned ${pred.data.length} values for a window of ${rx}x${ry}x${rz} with ${pred.channels} channels`);
        }
        if (!out) {
          K = pred.channels;
          out = new Float32Array(K * n);
        } else if (pred.channels !== K) throw new Error(`model returned ${pred.channels} channels, earlier windows had ${K}`);
        accumulate(out, weight, K, dims, pred.data, importance, roi, vx0, vy0, vz0, xa, xb);
        done++;
        o.onProgress?.(done, total);
      }

  if (!out) throw new Error('sliding window produced no windows');
  for (let k = 0; k < K; k++) {
    const off = k * n;
    for (let i = 0; i < n; i++) out[off + i]! /= weight[i]!;
  }
  return { data: out, channels: K, dims: [nx, ny, nz] };
}

function extractWindow(
  data: Float32Array, C: number, dims: Vec3, win: Float32Array, roi: Vec3,
  vx0: number, vy0: number, vz0: number, xa: number, xb: number,
): void {
  const [nx, ny, nz] = dims;
  const [rx, ry, rz] = roi;
  const n = nx * ny * nz;
  const rn = rx * ry * rz;
  const partialRows = xa > 0 || xb < rx;
  for (let c = 0; c < C; c++)
    for (let z = 0; z < rz; z++) {
      const vz = vz0 + z;
      for (let y = 0; y < ry; y++) {
        const vy = vy0 + y;
        const w = c * rn + rx * (y + ry * z);
        if (vz < 0 || vz >= nz || vy < 0 || vy >= ny) {
          win.fill(0, w, w + rx);
          continue;
        }
        if (partialRows) win.fill(0, w, w + rx);
        const s = c * n + nx * (vy + ny * vz) + vx0;
        win.set(data.subarray(s + xa, s + xb), w + xa);
      }
    }
}

function accumulate(
  out: Float32Array, weight: Float32Array, K: number, dims: Vec3, pred: Float32Array, importance: Float32Array, roi: Vec3,
  vx0: number, vy0: number, vz0: number, xa: number, xb: number,
): void {
  const [nx, ny, nz] = dims;
  const [rx, ry, rz] = roi;
  const n = nx * ny * nz;
  const rn = rx * ry * rz;
  for (let z = 0; z < rz; z++) {
    const vz = vz0 + z;
    if (vz < 0 || vz >= nz) continue;
    for (let y = 0; y < ry; y++) {
      const vy = vy0 + y;
      if (vy < 0 || vy >= ny) continue;
      const w = rx * (y + ry * z);
      const v = nx * (vy + ny * vz) + vx0;
      for (let x = xa; x < xb; x++) weight[v + x]! += importance[w + x]!;
      for (let k = 0; k < K; k++) {
        const po = k * rn + w;
        const oo = k * n + v;
        for (let x = xa; x < xb; x++) out[oo + x]! += importance[w + x]! * pred[po + x]!;
      }
    }
  }
}
