/**
 * Trilinear resampling of a volume into a reference volume's grid, in patient coordinates: how the
 * T1/T1c/T2 series are brought onto the reference (FLAIR) grid before the channels are stacked.
 */
import { patientToIndex, sameGrid, indexToPatient, voxelCount, type Volume } from './volume.js';

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
  // Points up to half a voxel beyond the outer voxel centres still lie inside the imaged volume: clamp.
  const clampIn = (v: number, n: number): number => (v < 0 ? (v > -0.5 ? 0 : NaN) : v > n - 1 ? (v < n - 0.5 ? n - 1 : NaN) : v);

  let p = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      let x = m000[0] + j * djx + k * dkx;
      let y = m000[1] + j * djy + k * dky;
      let z = m000[2] + j * djz + k * dkz;
      for (let i = 0; i < nx; i++, p++, x += dix, y += diy, z += diz) {
        const cx = clampIn(x, mx);
        const cy = clampIn(y, my);
        const cz = clampIn(z, mz);
        if (cx !== cx || cy !== cy || cz !== cz) {
          out[p] = fill;
          continue;
        }
        // Upper neighbour index clamped so that points on the last plane need no special case.
        const x0 = Math.min(Math.floor(cx), mx - 2 < 0 ? 0 : mx - 2);
        const y0 = Math.min(Math.floor(cy), my - 2 < 0 ? 0 : my - 2);
        const z0 = Math.min(Math.floor(cz), mz - 2 < 0 ? 0 : mz - 2);
        const fx = cx - x0, fy = cy - y0, fz = cz - z0;
        const ox = mx > 1 ? 1 : 0, oy = my > 1 ? mx : 0, oz = mz > 1 ? sxy : 0;
        const b = x0 + mx * y0 + sxy * z0;
        const c00 = src[b]! + (src[b + ox]! - src[b]!) * fx;
        const c10 = src[b + oy]! + (src[b + oy + ox]! - src[b + oy]!) * fx;
        const c01 = src[b + oz]! + (src[b + oz + ox]! - src[b + oz]!) * fx;
        const c11 = src[b + oz + oy]! + (src[b + oz + oy + ox]! - src[b + oz + oy]!) * fx;
        const c0 = c00 + (c10 - c00) * fy;
        const c1 = c01 + (c11 - c01) * fy;
        out[p] = c0 + (c1 - c0) * fz;
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
