/**
 * The in-memory image volume shared by the segmentation pipeline (loader, resampler, model, SEG writer).
 *
 * Geometry follows DICOM patient coordinates (LPS, mm): voxel (i, j, k) lies at
 *   origin + i*spacing[0]*row + j*spacing[1]*col + k*spacing[2]*normal
 * where `row` is the direction of increasing column index (ImageOrientationPatient[0..2]), `col` the
 * direction of increasing row index (ImageOrientationPatient[3..5]) and `normal` the direction of
 * increasing slice index. Data is stored x fastest, then y, then z.
 */

export type Vec3 = [number, number, number];

export interface Direction {
  row: Vec3;
  col: Vec3;
  normal: Vec3;
}

/**
 * Patient/study module attributes of the source series, kept so that derived objects (the SEG) belong to
 * the same patient and study. Values are raw DICOM strings; they are patient data and must never be logged.
 */
export interface DicomPatientStudy {
  /** Needed to interpret the other values' bytes (kept as latin1 strings, so bytes round-trip exactly). */
  SpecificCharacterSet?: string;
  PatientName?: string;
  PatientID?: string;
  PatientBirthDate?: string;
  PatientSex?: string;
  StudyDate?: string;
  StudyTime?: string;
  StudyID?: string;
  AccessionNumber?: string;
  ReferringPhysicianName?: string;
  StudyDescription?: string;
}

export interface Volume {
  /** [columns, rows, slices]. */
  dims: Vec3;
  /** Voxel size in mm along row, col and normal. */
  spacing: Vec3;
  /** Patient coordinates (mm) of the centre of voxel 0. */
  origin: Vec3;
  direction: Direction;
  /** Intensities (rescale applied), x fastest, then y, then z. */
  data: Float32Array;
  frameOfReferenceUID: string;
  studyInstanceUID?: string;
  seriesInstanceUID?: string;
  sopClassUID?: string;
  /** SOP instance UID of each slice, index = k. */
  sopInstanceUIDs?: string[];
  /** For multi-frame sources: the 1-based frame number of each slice within its instance, index = k. */
  frameNumbers?: number[];
  /** Patient/study attributes copied from the source series (for the SEG). */
  dicom?: DicomPatientStudy;
  /** Where the volume came from (a folder or series id), for error messages. */
  source?: string;
}

export const AXIAL: Direction = Object.freeze({
  row: [1, 0, 0] as Vec3,
  col: [0, 1, 0] as Vec3,
  normal: [0, 0, 1] as Vec3,
}) as Direction;

export function voxelCount(dims: readonly number[]): number {
  return (dims[0] ?? 0) * (dims[1] ?? 0) * (dims[2] ?? 0);
}

/** Linear offset of voxel (i, j, k) in `data`. */
export function voxelOffset(dims: Vec3, i: number, j: number, k: number): number {
  return i + dims[0] * (j + dims[1] * k);
}

/** Volume of one voxel in mL (mm^3 / 1000). */
export function voxelVolumeMl(spacing: Vec3): number {
  return (spacing[0] * spacing[1] * spacing[2]) / 1000;
}

export function dot(a: Vec3, b: Vec3): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

export function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

export function norm(a: Vec3): number {
  return Math.sqrt(dot(a, a));
}

export function normalize(a: Vec3): Vec3 {
  const n = norm(a);
  if (n === 0) throw new Error('cannot normalise a zero vector');
  return [a[0] / n, a[1] / n, a[2] / n];
}

/** Patient coordinates (mm) of a (possibly fractional) voxel index. */
export function indexToPatient(vol: Pick<Volume, 'origin' | 'spacing' | 'direction'>, i: number, j: number, k: number): Vec3 {
  const { origin: o, spacing: s, direction: d } = vol;
  const a = i * s[0];
  const b = j * s[1];
  const c = k * s[2];
  return [
    o[0] + a * d.row[0] + b * d.col[0] + c * d.normal[0],
    o[1] + a * d.row[1] + b * d.col[1] + c * d.normal[1],
    o[2] + a * d.row[2] + b * d.col[2] + c * d.normal[2],
  ];
}

/**
 * Continuous voxel index of a patient point. Assumes orthonormal direction vectors (as DICOM
 * ImageOrientationPatient is), so the inverse is a projection on each axis.
 */
export function patientToIndex(vol: Pick<Volume, 'origin' | 'spacing' | 'direction'>, p: Vec3): Vec3 {
  const { origin: o, spacing: s, direction: d } = vol;
  const v: Vec3 = [p[0] - o[0], p[1] - o[1], p[2] - o[2]];
  return [dot(v, d.row) / s[0], dot(v, d.col) / s[1], dot(v, d.normal) / s[2]];
}

/** Patient position of slice k's first voxel (its ImagePositionPatient). */
export function slicePosition(vol: Pick<Volume, 'origin' | 'spacing' | 'direction'>, k: number): Vec3 {
  return indexToPatient(vol, 0, 0, k);
}

/** True when both volumes sample exactly the same points (within `tolMm` at the grid corners). */
export function sameGrid(
  a: Pick<Volume, 'dims' | 'origin' | 'spacing' | 'direction'>,
  b: Pick<Volume, 'dims' | 'origin' | 'spacing' | 'direction'>,
  tolMm = 1e-3,
): boolean {
  if (a.dims[0] !== b.dims[0] || a.dims[1] !== b.dims[1] || a.dims[2] !== b.dims[2]) return false;
  const [nx, ny, nz] = a.dims;
  for (const [i, j, k] of [
    [0, 0, 0],
    [nx - 1, 0, 0],
    [0, ny - 1, 0],
    [0, 0, nz - 1],
    [nx - 1, ny - 1, nz - 1],
  ] as Vec3[]) {
    const pa = indexToPatient(a, i, j, k);
    const pb = indexToPatient(b, i, j, k);
    if (Math.abs(pa[0] - pb[0]) > tolMm || Math.abs(pa[1] - pb[1]) > tolMm || Math.abs(pa[2] - pb[2]) > tolMm) return false;
  }
  return true;
}

/** A volume of zeros on the same grid and with the same identity as `ref`. */
export function emptyLike(ref: Volume): Volume {
  return { ...ref, dims: [...ref.dims], spacing: [...ref.spacing], origin: [...ref.origin], data: new Float32Array(voxelCount(ref.dims)) };
}
