/**
 * Trilinear resampling of a volume into a reference volume's grid, in patient coordinates: how the
 * T1/T1c/T2 series are brought onto the reference (FLAIR) grid before the channels are stacked.
 */
import { patientToIndex, sameGrid, indexToPatient, voxelCount, type Vec3, type Volume } from './volume.js';

export interface ResampleOptions {
  /** Resample even when the FrameOfReferenceUIDs differ (only if the series are known to be registered). */
  allowDifferentFrameOfReference?: boolean;
  /** Value for points outside the moving volume (default 0: no signal). */
  fill?: number;
}

type Grid = Pick<Volume, 'dims' | 'spacing' | 'origin' | 'direction' | 'frameOfReferenceUID'> & { source?: string; seriesInstanceUID?: string };

function name(v: { source?: string; seriesInstanceUID?: string }): string {
  return v.source ?? v.seriesInstanceUID ?? 'unnamed series';
}

/**
 * Returns `moving` resampled onto `reference`'s grid. When the grids already match, `moving` itself is
 * returned (no copy). The result keeps the moving series' identity but not its per-slice SOP instances.
 */
export function resampleToReference(moving: Volume, reference: Grid, opts: ResampleOptions = {}): Volume {
  if (moving.frameOfReferenceUID !== reference.frameOfReferenceUID && !opts.allowDifferentFrameOfReference) {
    throw new Error(
      `series ${name(moving)} has FrameOfReferenceUID ${moving.frameOfReferenceUID}, reference ${name(reference)} has ` +
        `${reference.frameOfReferenceUID}: patient coordinates are not comparable (set allowDifferentFrameOfReference if they are registered)`,
    );
  }
  if (sameGrid(moving, reference)) return moving;

  const fill = opts.fill ?? 0;
  const [nx, ny, nz] = reference.dims;
  const [mx, my, mz] = moving.dims;
  const src = moving.data;
  const out = new Float32Array(voxelCount(reference.dims));
  // The map reference index -> moving index is affine: m = m000 + i*di + j*dj + k*dk.
  const m000 = patientToIndex(moving, indexToPatient(reference, 0, 0, 0));
  const step = (i: number, j: number, k: number): number[] => {
    const p = patientToIndex(moving, indexToPatient(reference, i, j, k));
    return [p[0] - m000[0], p[1] - m000[1], p[2] - m000[2]];
  };
  const [dix, diy, diz] = step(1, 0, 0) as [number, number, number];
  const [djx, djy, djz] = step(0, 1, 0) as [number, number, number];
  const [dkx, dky, dkz] = step(0, 0, 1) as [number, number, number];
  const sxy = mx * my;
  const ox = mx > 1 ? 1 : 0;
  const oy = my > 1 ? mx : 0;
  const oz = mz > 1 ? sxy : 0;
  // Lower corner index limits, so that a point on the last plane needs no special case.
  const xmax0 = Math.max(mx - 2, 0), ymax0 = Math.max(my - 2, 0), zmax0 = Math.max(mz - 2, 0);
  const mx1 = mx - 1, my1 = my - 1, mz1 = mz - 1;

  const tiny = 1e-9;
  if ([diy, diz, djx, djz, dkx, dky].every((v) => Math.abs(v) < tiny)) {
    resampleAxisAligned(src, moving.dims, reference.dims, m000, [dix, djy, dkz], fill, out);
  } else {
    resampleGeneral();
  }
  function resampleGeneral(): void {
  let p = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++, p += nx) {
      const x0r = m000[0] + j * djx + k * dkx;
      const y0r = m000[1] + j * djy + k * dky;
      const z0r = m000[2] + j * djz + k * dkz;
      // Points up to half a voxel beyond the outer voxel centres still lie inside the imaged volume.
      // Along a row each coordinate is linear in i, so the inside part is one interval [iStart, iEnd].
      let lo = 0;
      let hi = nx - 1;
      for (const [c0, d, n] of [[x0r, dix, mx], [y0r, diy, my], [z0r, diz, mz]] as const) {
        if (Math.abs(d) < 1e-12) {
          if (c0 < -0.5 || c0 > n - 0.5) hi = -1;
          continue;
        }
        const a = (-0.5 - c0) / d;
        const b = (n - 0.5 - c0) / d;
        lo = Math.max(lo, Math.ceil(Math.min(a, b) - 1e-9));
        hi = Math.min(hi, Math.floor(Math.max(a, b) + 1e-9));
      }
      if (hi < lo) {
        out.fill(fill, p, p + nx);
        continue;
      }
      if (lo > 0) out.fill(fill, p, p + lo);
      if (hi < nx - 1) out.fill(fill, p + hi + 1, p + nx);
      let x = x0r + lo * dix;
      let y = y0r + lo * diy;
      let z = z0r + lo * diz;
      for (let i = lo; i <= hi; i++, x += dix, y += diy, z += diz) {
        const cx = x < 0 ? 0 : x > mx1 ? mx1 : x;
        const cy = y < 0 ? 0 : y > my1 ? my1 : y;
        const cz = z < 0 ? 0 : z > mz1 ? mz1 : z;
        let xi = cx | 0;
        let yi = cy | 0;
        let zi = cz | 0;
        if (xi > xmax0) xi = xmax0;
        if (yi > ymax0) yi = ymax0;
        if (zi > zmax0) zi = zmax0;
        const fx = cx - xi, fy = cy - yi, fz = cz - zi;
        const b = xi + mx * yi + sxy * zi;
        const c00 = src[b]! + (src[b + ox]! - src[b]!) * fx;
        const c10 = src[b + oy]! + (src[b + oy + ox]! - src[b + oy]!) * fx;
        const c01 = src[b + oz]! + (src[b + oz + ox]! - src[b + oz]!) * fx;
        const c11 = src[b + oz + oy]! + (src[b + oz + oy + ox]! - src[b + oz + oy]!) * fx;
        const c0 = c00 + (c10 - c00) * fy;
        const c1 = c01 + (c11 - c01) * fy;
        out[p + i] = c0 + (c1 - c0) * fz;
      }
    }
  }
  }
  return {
    dims: [...reference.dims],
    spacing: [...reference.spacing],
    origin: [...reference.origin],
    direction: { row: [...reference.direction.row], col: [...reference.direction.col], normal: [...reference.direction.normal] },
    data: out,
    frameOfReferenceUID: moving.frameOfReferenceUID,
    ...(moving.studyInstanceUID !== undefined && { studyInstanceUID: moving.studyInstanceUID }),
    ...(moving.seriesInstanceUID !== undefined && { seriesInstanceUID: moving.seriesInstanceUID }),
    ...(moving.dicom !== undefined && { dicom: moving.dicom }),
    ...(moving.source !== undefined && { source: moving.source }),
  };
}

/**
 * Same orientation, only spacing/offset differ (the usual case between series of one MR exam): the
 * column index and weight depend on i only and the row/slice pair on (j, k) only, so they are computed
 * once per axis instead of once per voxel.
 */
function resampleAxisAligned(src: Float32Array, mdims: Vec3, rdims: Vec3, m0: Vec3, step: Vec3, fill: number, out: Float32Array): void {
  const [mx, my, mz] = mdims;
  const [nx, ny, nz] = rdims;
  const axis = (c0: number, d: number, n: number, count: number): { lo: Int32Array; f: Float32Array; ok: Uint8Array } => {
    const lo = new Int32Array(count);
    const f = new Float32Array(count);
    const ok = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const c = c0 + i * d;
      if (c < -0.5 || c > n - 0.5) continue;
      const cc = c < 0 ? 0 : c > n - 1 ? n - 1 : c;
      let l = Math.floor(cc);
      if (l > n - 2) l = Math.max(n - 2, 0);
      lo[i] = l;
      f[i] = n > 1 ? cc - l : 0;
      ok[i] = 1;
    }
    return { lo, f, ok };
  };
  const X = axis(m0[0], step[0], mx, nx);
  const Y = axis(m0[1], step[1], my, ny);
  const Z = axis(m0[2], step[2], mz, nz);
  const ox = mx > 1 ? 1 : 0;
  const oy = my > 1 ? mx : 0;
  const oz = mz > 1 ? mx * my : 0;
  const xlo = X.lo, xf = X.f, xok = X.ok;
  let p = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++, p += nx) {
      if (!Z.ok[k] || !Y.ok[j]) {
        out.fill(fill, p, p + nx);
        continue;
      }
      const fy = Y.f[j]!, fz = Z.f[k]!;
      const w00 = (1 - fy) * (1 - fz), w10 = fy * (1 - fz), w01 = (1 - fy) * fz, w11 = fy * fz;
      const r00 = mx * Y.lo[j]! + mx * my * Z.lo[k]!;
      const r10 = r00 + oy, r01 = r00 + oz, r11 = r00 + oy + oz;
      for (let i = 0; i < nx; i++) {
        if (!xok[i]) {
          out[p + i] = fill;
          continue;
        }
        const x = xlo[i]!;
        const fx = xf[i]!;
        const a = src[r00 + x]!, b = src[r10 + x]!, c = src[r01 + x]!, d = src[r11 + x]!;
        const v0 = a * w00 + b * w10 + c * w01 + d * w11;
        const v1 = src[r00 + x + ox]! * w00 + src[r10 + x + ox]! * w10 + src[r01 + x + ox]! * w01 + src[r11 + x + ox]! * w11;
        out[p + i] = v0 + (v1 - v0) * fx;
      }
    }
  }
}
