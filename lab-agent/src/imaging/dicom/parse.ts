/**
 * Parses one DICOM file into the header fields the series loader needs and a reference to its pixel
 * bytes, for single-frame images and enhanced (multi-frame) images with functional groups.
 */
import dicomParser from 'dicom-parser';
import type { DataSet } from 'dicom-parser';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import type { DicomPatientStudy, Vec3 } from '../volume.js';

/**
 * The most a deflated file may inflate to. One image file (even an enhanced multi-frame study of
 * 240x240x155 int16, 18 MB) is far below it; a "deflate bomb" is refused instead of exhausting memory.
 */
export const MAX_INFLATED_BYTES = 256 * 1024 * 1024;

/** Our own refusals, as opposed to whatever a malformed value makes the parser throw. */
class DicomFileError extends Error {
  override name = 'DicomFileError';
}

/** dicom-parser's inflater hook, with an output limit (its built-in one has none). */
function boundedInflater(byteArray: Uint8Array, position: number): Uint8Array {
  const deflated = Buffer.from(byteArray.buffer, byteArray.byteOffset + position, byteArray.length - position);
  let inflated: Buffer;
  try {
    inflated = inflateRawSync(deflated, { maxOutputLength: MAX_INFLATED_BYTES });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE' || /maxOutputLength|larger than/i.test((e as Error).message)) {
      throw new DicomFileError(`deflated data set inflates to more than ${MAX_INFLATED_BYTES / 2 ** 20} MiB; refused`);
    }
    throw new DicomFileError(`deflated data set is corrupt (${(e as Error).message})`);
  }
  const full = new Uint8Array(position + inflated.length);
  full.set(byteArray.subarray(0, position), 0);
  full.set(inflated, position);
  return full;
}

const UNCOMPRESSED = new Map<string, string>([
  ['1.2.840.10008.1.2', 'implicit VR little endian'],
  ['1.2.840.10008.1.2.1', 'explicit VR little endian'],
  ['1.2.840.10008.1.2.1.99', 'deflated explicit VR little endian'],
  ['1.2.840.10008.1.2.2', 'explicit VR big endian'],
]);
export const BIG_ENDIAN_TS = '1.2.840.10008.1.2.2';

const COMPRESSED_NAMES: Record<string, string> = {
  '1.2.840.10008.1.2.4.50': 'JPEG baseline',
  '1.2.840.10008.1.2.4.51': 'JPEG extended',
  '1.2.840.10008.1.2.4.57': 'JPEG lossless',
  '1.2.840.10008.1.2.4.70': 'JPEG lossless SV1',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS near-lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.5': 'RLE lossless',
  '1.2.840.10008.1.2.4.201': 'HTJ2K lossless',
  '1.2.840.10008.1.2.4.203': 'HTJ2K',
};

/** One 2D image plane of a file (a single-frame file has one). */
export interface FrameHeader {
  /** 1-based frame number within the file. */
  frame: number;
  ipp: Vec3;
  iop: number[];
  /** [row spacing, column spacing] mm, as PixelSpacing. */
  pixelSpacing: number[];
  slope: number;
  intercept: number;
}

export interface ParsedFile {
  file: string;
  transferSyntaxUID: string;
  sopClassUID: string;
  sopInstanceUID: string;
  studyInstanceUID: string;
  seriesInstanceUID: string;
  frameOfReferenceUID: string;
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  frames: FrameHeader[];
  /** The bytes holding the pixel data (after inflation for deflated files). */
  bytes: Uint8Array;
  pixelOffset: number;
  littleEndian: boolean;
  patientStudy: DicomPatientStudy;
}

/** dicom-parser throws strings and `{exception, dataSet}` objects; turn whatever it threw into text. */
export function describeThrown(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && 'exception' in e) return describeThrown((e as { exception: unknown }).exception);
  return String(e);
}

const PATIENT_STUDY_TAGS: Record<keyof DicomPatientStudy, string> = {
  SpecificCharacterSet: 'x00080005',
  PatientName: 'x00100010',
  PatientID: 'x00100020',
  PatientBirthDate: 'x00100030',
  PatientSex: 'x00100040',
  StudyDate: 'x00080020',
  StudyTime: 'x00080030',
  StudyID: 'x00200010',
  AccessionNumber: 'x00080050',
  ReferringPhysicianName: 'x00080090',
  StudyDescription: 'x00081030',
};

function numbers(ds: DataSet, tag: string): number[] {
  const n = ds.numStringValues(tag) ?? 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(ds.floatString(tag, i) ?? NaN);
  return out;
}

/** Looks an attribute up in a functional group: per-frame item first, then the shared item. */
function groupItem(perFrame: DataSet | undefined, shared: DataSet | undefined, seqTag: string): DataSet | undefined {
  return perFrame?.elements[seqTag]?.items?.[0]?.dataSet ?? shared?.elements[seqTag]?.items?.[0]?.dataSet;
}

export function parseDicomFile(file: string, bytes: Uint8Array): ParsedFile {
  try {
    return parseChecked(file, bytes);
  } catch (e) {
    if (e instanceof DicomFileError) throw new Error(e.message);
    // dicom-parser's accessors throw bare strings (e.g. a value running past the end of the file).
    throw new Error(`${path.basename(file)}: not a readable DICOM file (${describeThrown(e)})`);
  }
}

function parseChecked(file: string, bytes: Uint8Array): ParsedFile {
  const fail = (problem: string): Error => new DicomFileError(`${path.basename(file)}: ${problem}`);
  let ds: DataSet;
  const part10 = bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
  // Old files without preamble/meta are raw implicit VR little endian data sets, starting with group 0008.
  const raw = !part10 && bytes.length >= 8 && bytes[0] === 0x08 && bytes[1] === 0x00;
  if (!part10 && !raw) throw fail('not a readable DICOM file (no "DICM" prefix at byte 128, not a DICOM Part-10 file)');
  try {
    ds = dicomParser.parseDicom(bytes, raw ? { TransferSyntaxUID: '1.2.840.10008.1.2' } : { inflater: boundedInflater });
  } catch (e) {
    if (e instanceof DicomFileError) throw fail(e.message);
    const inner = e && typeof e === 'object' && 'exception' in e ? (e as { exception: unknown }).exception : e;
    if (inner instanceof DicomFileError) throw fail(inner.message);
    throw fail(`not a readable DICOM file (${describeThrown(e)})`);
  }
  const str = (tag: string): string => (ds.string(tag) ?? '').trim();
  const ts = raw ? '1.2.840.10008.1.2' : str('x00020010');
  if (!UNCOMPRESSED.has(ts)) {
    const what = COMPRESSED_NAMES[ts] ?? 'unsupported';
    throw fail(`transfer syntax ${ts} (${what}) is not supported; only uncompressed pixel data is read (decompress the series first, e.g. with dcmdjpeg or gdcmconv --raw)`);
  }
  const pixel = ds.elements.x7fe00010;
  if (!pixel) {
    const cls = str('x00080016');
    throw fail(`not an image: no PixelData (SOP class ${cls || 'unknown'})`);
  }
  if (pixel.encapsulatedPixelData) throw fail('pixel data is encapsulated although the transfer syntax is uncompressed');
  const rows = ds.uint16('x00280010') ?? 0;
  const columns = ds.uint16('x00280011') ?? 0;
  const bitsAllocated = ds.uint16('x00280100') ?? 0;
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  const pixelRepresentation = ds.uint16('x00280103') ?? 0;
  const samples = ds.uint16('x00280002') ?? 1;
  const nFrames = ds.elements.x00280008 ? ds.intString('x00280008') : 1;
  if (!rows || !columns) throw fail('Rows/Columns missing');
  if (nFrames === undefined || !Number.isInteger(nFrames) || nFrames < 1 || nFrames > 65535) {
    throw fail(`NumberOfFrames '${str('x00280008')}' is not a frame count`);
  }
  if (samples !== 1) throw fail(`SamplesPerPixel is ${samples}; only greyscale images are supported`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32) throw fail(`BitsAllocated ${bitsAllocated} is not supported`);
  const expected = rows * columns * (bitsAllocated / 8) * nFrames;
  const available = ds.byteArray.length - pixel.dataOffset;
  if (pixel.length < expected || available < expected) {
    throw fail(`truncated pixel data: ${Math.min(pixel.length, available)} bytes for ${nFrames} frame(s) of ${columns}x${rows}x${bitsAllocated} bits (${expected} expected)`);
  }

  const frames: FrameHeader[] = [];
  const perFrameSeq = ds.elements.x52009230?.items;
  if (nFrames > 1 || perFrameSeq) {
    // Enhanced multi-frame: geometry and rescale live in functional groups.
    const shared = ds.elements.x52009229?.items?.[0]?.dataSet;
    if (!perFrameSeq || perFrameSeq.length !== nFrames) {
      throw fail(`multi-frame image with ${nFrames} frames lacks per-frame functional groups with plane positions`);
    }
    for (let f = 0; f < nFrames; f++) {
      const pf = perFrameSeq[f]!.dataSet;
      const pos = groupItem(pf, shared, 'x00209113');
      const ori = groupItem(pf, shared, 'x00209116');
      const meas = groupItem(pf, shared, 'x00289110');
      const pvt = groupItem(pf, shared, 'x00289145');
      if (!pos || !ori || !meas) throw fail(`frame ${f + 1} lacks PlanePosition/PlaneOrientation/PixelMeasures`);
      frames.push({
        frame: f + 1,
        ipp: numbers(pos, 'x00200032') as Vec3,
        iop: numbers(ori, 'x00200037'),
        pixelSpacing: numbers(meas, 'x00280030'),
        slope: pvt?.floatString('x00281053') ?? 1,
        intercept: pvt?.floatString('x00281052') ?? 0,
      });
    }
  } else {
    frames.push({
      frame: 1,
      ipp: numbers(ds, 'x00200032') as Vec3,
      iop: numbers(ds, 'x00200037'),
      pixelSpacing: numbers(ds, 'x00280030'),
      slope: ds.floatString('x00281053') ?? 1,
      intercept: ds.floatString('x00281052') ?? 0,
    });
  }
  for (const fr of frames) {
    if (fr.ipp.length !== 3 || fr.ipp.some((x) => !Number.isFinite(x))) throw fail(`ImagePositionPatient missing or invalid${nFrames > 1 ? ` (frame ${fr.frame})` : ''}`);
    if (fr.iop.length !== 6 || fr.iop.some((x) => !Number.isFinite(x))) throw fail('ImageOrientationPatient missing or invalid');
    if (fr.pixelSpacing.length !== 2 || fr.pixelSpacing.some((x) => !(x > 0))) throw fail('PixelSpacing missing or invalid');
    if (!Number.isFinite(fr.slope) || !Number.isFinite(fr.intercept)) throw fail('RescaleSlope/RescaleIntercept invalid');
  }

  const patientStudy: DicomPatientStudy = {};
  for (const [key, tag] of Object.entries(PATIENT_STUDY_TAGS) as [keyof DicomPatientStudy, string][]) {
    const v = ds.string(tag);
    if (v !== undefined) patientStudy[key] = v.trim();
  }
  return {
    file,
    transferSyntaxUID: ts,
    sopClassUID: str('x00080016'),
    sopInstanceUID: str('x00080018'),
    studyInstanceUID: str('x0020000d'),
    seriesInstanceUID: str('x0020000e'),
    frameOfReferenceUID: str('x00200052'),
    rows,
    columns,
    bitsAllocated,
    bitsStored,
    pixelRepresentation,
    frames,
    bytes: ds.byteArray,
    pixelOffset: pixel.dataOffset,
    littleEndian: ts !== BIG_ENDIAN_TS,
    patientStudy,
  };
}
