/**
 * DICOM Segmentation (BINARY) writer: a label map on a reference series' grid becomes one multi-frame
 * SEG instance in the reference's study and frame of reference, referencing the reference series'
 * images so that viewers (OHIF, 3D Slicer) overlay it on that series.
 */
import { el, newUid, writePart10, type DataSet } from '../dicom/write.js';
import { cross, dot, slicePosition, voxelCount, type Volume } from '../volume.js';
import { srgbToDicomLab, type Code, type SegmentDefinition } from './segments.js';

export const SEGMENTATION_STORAGE = '1.2.840.10008.5.1.4.1.1.66.4';

export interface SegAlgorithm {
  name: string;
  version: string;
}

export interface WriteSegOptions {
  /** One label per voxel of `reference` (x fastest, then y, then z). */
  labels: Uint8Array;
  /**
   * The series the SEG is drawn on: its grid, and its DICOM identity (studyInstanceUID, seriesInstanceUID,
   * sopClassUID, sopInstanceUIDs per slice, frameOfReferenceUID) and patient/study attributes
   * (`reference.dicom`, as loadSeries keeps them).
   */
  reference: Volume;
  segments: readonly SegmentDefinition[];
  algorithm: SegAlgorithm;
  seriesDescription?: string;
  seriesNumber?: number;
  contentLabel?: string;
  contentCreatorName?: string;
  manufacturer?: string;
  /** Creation time (default now). */
  now?: Date;
  sopInstanceUID?: string;
  seriesInstanceUID?: string;
}

export interface WrittenSeg {
  /** The Part-10 file bytes. */
  bytes: Buffer;
  sopInstanceUID: string;
  seriesInstanceUID: string;
  /** Frames written per segment number (a segment with no voxels has none). */
  framesPerSegment: number[];
  numberOfFrames: number;
}

const code = (c: Code): DataSet => [el(0x00080100, 'SH', c.value), el(0x00080102, 'SH', c.scheme), el(0x00080104, 'LO', c.meaning)];

function dicomDate(d: Date): string {
  return d.toISOString().slice(0, 10).replace(/-/g, '');
}
function dicomTime(d: Date): string {
  return d.toISOString().slice(11, 19).replace(/:/g, '');
}

interface Frame {
  segmentNumber: number;
  slice: number;
}

export function writeSeg(opts: WriteSegOptions): WrittenSeg {
  const ref = opts.reference;
  const where = `SEG for series ${ref.source ?? ref.seriesInstanceUID ?? '(unknown)'}`;
  const [nx, ny, nz] = ref.dims;
  const plane = nx * ny;
  if (opts.labels.length !== voxelCount(ref.dims)) {
    throw new Error(`${where}: label map has ${opts.labels.length} voxels, the reference grid ${ref.dims.join('x')} has ${voxelCount(ref.dims)}`);
  }
  const sops = ref.sopInstanceUIDs;
  if (!ref.studyInstanceUID || !ref.seriesInstanceUID || !ref.sopClassUID || !sops || sops.length !== nz) {
    throw new Error(`${where}: the reference volume lacks its DICOM identity (study/series/SOP class UIDs and one SOP instance UID per slice); load it with loadSeries`);
  }
  if (opts.segments.length === 0) throw new Error(`${where}: no segment definitions`);
  if (Math.abs(dot(ref.direction.normal, cross(ref.direction.row, ref.direction.col)) - 1) > 1e-3) {
    throw new Error(`${where}: the slice normal must be ImageOrientationPatient row x column`);
  }

  // Which slices hold which segment: one pass over the label map.
  const byValue = new Map<number, number>();
  opts.segments.forEach((s, i) => {
    if (byValue.has(s.labelValue)) throw new Error(`${where}: label value ${s.labelValue} defined twice`);
    byValue.set(s.labelValue, i);
  });
  const present = opts.segments.map(() => new Uint8Array(nz));
  for (let k = 0; k < nz; k++) {
    const base = k * plane;
    for (let q = 0; q < plane; q++) {
      const v = opts.labels[base + q]!;
      if (v !== 0) {
        const si = byValue.get(v);
        if (si !== undefined) present[si]![k] = 1;
      }
    }
  }
  const frames: Frame[] = [];
  const framesPerSegment = opts.segments.map((_, si) => {
    let n = 0;
    for (let k = 0; k < nz; k++) if (present[si]![k]) (frames.push({ segmentNumber: si + 1, slice: k }), n++);
    return n;
  });
  // A SEG may not have zero frames: when nothing was found, one empty frame of segment 1 says so.
  if (frames.length === 0) frames.push({ segmentNumber: 1, slice: 0 });

  // 1 bit per pixel, LSB first, frames back to back without padding (PS3.5 8.1.1).
  const pixelBytes = new Uint8Array(Math.ceil((frames.length * plane) / 8 / 2) * 2);
  frames.forEach((f, fi) => {
    const labelValue = opts.segments[f.segmentNumber - 1]!.labelValue;
    const src = f.slice * plane;
    let bit = fi * plane;
    for (let q = 0; q < plane; q++, bit++) {
      if (opts.labels[src + q] === labelValue) pixelBytes[bit >>> 3]! |= 1 << (bit & 7);
    }
  });

  const now = opts.now ?? new Date();
  const date = dicomDate(now);
  const time = dicomTime(now);
  const sopInstanceUID = opts.sopInstanceUID ?? newUid();
  const seriesInstanceUID = opts.seriesInstanceUID ?? newUid();
  const dimensionOrganizationUID = newUid();
  const d = ref.dicom ?? {};
  const iop = [...ref.direction.row, ...ref.direction.col];
  const pixelSpacing = [ref.spacing[1], ref.spacing[0]];
  const multiFrameSource = ref.frameNumbers !== undefined;

  const perFrame: DataSet[] = frames.map((f) => {
    const source: DataSet = [
      el(0x00081150, 'UI', ref.sopClassUID), // ReferencedSOPClassUID
      el(0x00081155, 'UI', sops[f.slice]!), // ReferencedSOPInstanceUID
      ...(multiFrameSource ? [el(0x00081160, 'IS', ref.frameNumbers![f.slice]!)] : []), // ReferencedFrameNumber
      el(0x0040a170, 'SQ', [code({ value: '121322', scheme: 'DCM', meaning: 'Source image for image processing operation' })]),
    ];
    return [
      el(0x00089124, 'SQ', [
        // DerivationImageSequence
        [
          el(0x00082112, 'SQ', [source]), // SourceImageSequence
          el(0x00089215, 'SQ', [code({ value: '113076', scheme: 'DCM', meaning: 'Segmentation' })]), // DerivationCodeSequence
        ],
      ]),
      el(0x00209111, 'SQ', [[el(0x00209157, 'UL', [f.segmentNumber, f.slice + 1])]]), // FrameContentSequence > DimensionIndexValues
      el(0x00209113, 'SQ', [[el(0x00200032, 'DS', slicePosition(ref, f.slice))]]), // PlanePositionSequence
      el(0x0062000a, 'SQ', [[el(0x0062000b, 'US', f.segmentNumber)]]), // SegmentIdentificationSequence
    ];
  });

  const shared: DataSet = [
    el(0x00209116, 'SQ', [[el(0x00200037, 'DS', iop)]]), // PlaneOrientationSequence
    el(0x00289110, 'SQ', [
      // PixelMeasuresSequence
      [el(0x00180050, 'DS', ref.spacing[2]), el(0x00180088, 'DS', ref.spacing[2]), el(0x00280030, 'DS', pixelSpacing)],
    ]),
  ];

  const ds: DataSet = [
    // SOP Common
    // The copied patient/study strings keep the reference's bytes, so they keep its character set too.
    el(0x00080005, 'CS', d.SpecificCharacterSet ?? 'ISO_IR 100'),
    el(0x00080016, 'UI', SEGMENTATION_STORAGE),
    el(0x00080018, 'UI', sopInstanceUID),
    el(0x00080012, 'DA', date),
    el(0x00080013, 'TM', time),
    // Patient and General Study: copied from the reference series (type 2: empty when unknown)
    el(0x00100010, 'PN', d.PatientName ?? ''),
    el(0x00100020, 'LO', d.PatientID ?? ''),
    el(0x00100030, 'DA', d.PatientBirthDate ?? ''),
    el(0x00100040, 'CS', d.PatientSex ?? ''),
    el(0x0020000d, 'UI', ref.studyInstanceUID),
    el(0x00080020, 'DA', d.StudyDate ?? ''),
    el(0x00080030, 'TM', d.StudyTime ?? ''),
    el(0x00080090, 'PN', d.ReferringPhysicianName ?? ''),
    el(0x00200010, 'SH', d.StudyID ?? ''),
    el(0x00080050, 'SH', d.AccessionNumber ?? ''),
    ...(d.StudyDescription ? [el(0x00081030, 'LO', d.StudyDescription)] : []),
    // General Series / Segmentation Series
    el(0x00080060, 'CS', 'SEG'),
    el(0x0020000e, 'UI', seriesInstanceUID),
    el(0x00200011, 'IS', opts.seriesNumber ?? 300),
    el(0x0008103e, 'LO', opts.seriesDescription ?? `Tumour segmentation (${opts.algorithm.name})`),
    el(0x00080021, 'DA', date),
    el(0x00080031, 'TM', time),
    // Frame of Reference
    el(0x00200052, 'UI', ref.frameOfReferenceUID),
    el(0x00201040, 'LO', ''),
    // General Equipment / Enhanced General Equipment
    el(0x00080070, 'LO', opts.manufacturer ?? 'lab-relay'),
    el(0x00081090, 'LO', opts.algorithm.name),
    el(0x00181000, 'LO', '1'),
    el(0x00181020, 'LO', opts.algorithm.version),
    // General Image / Segmentation Image
    el(0x00200013, 'IS', 1),
    el(0x00080023, 'DA', date),
    el(0x00080033, 'TM', time),
    el(0x00080008, 'CS', ['DERIVED', 'PRIMARY']),
    el(0x00280301, 'CS', 'NO'), // BurnedInAnnotation
    el(0x00282110, 'CS', '00'), // LossyImageCompression
    el(0x00700080, 'CS', (opts.contentLabel ?? 'TUMOUR').toUpperCase().replace(/[^A-Z0-9_ ]/g, '_').slice(0, 16)),
    el(0x00700081, 'LO', `Brain tumour subregions by ${opts.algorithm.name} ${opts.algorithm.version}`.slice(0, 64)),
    el(0x00700084, 'PN', opts.contentCreatorName ?? 'LABRELAY^AGENT'),
    el(0x00620001, 'CS', 'BINARY'),
    el(0x00620002, 'SQ', opts.segments.map((s, i) => segmentItem(s, i + 1, opts.algorithm))),
    // Image Pixel
    el(0x00280002, 'US', 1),
    el(0x00280004, 'CS', 'MONOCHROME2'),
    el(0x00280010, 'US', ny),
    el(0x00280011, 'US', nx),
    el(0x00280100, 'US', 1),
    el(0x00280101, 'US', 1),
    el(0x00280102, 'US', 0),
    el(0x00280103, 'US', 0),
    // Multi-frame Functional Groups / Dimensions
    el(0x00280008, 'IS', frames.length),
    el(0x52009229, 'SQ', [shared]),
    el(0x52009230, 'SQ', perFrame),
    el(0x00209221, 'SQ', [[el(0x00209164, 'UI', dimensionOrganizationUID)]]), // DimensionOrganizationSequence
    el(0x00209311, 'CS', '3D'), // DimensionOrganizationType
    el(0x00209222, 'SQ', [
      // DimensionIndexSequence: segment number, then position
      [
        el(0x00209164, 'UI', dimensionOrganizationUID),
        el(0x00209165, 'AT', [0x0062000b]),
        el(0x00209167, 'AT', [0x0062000a]),
        el(0x00209421, 'LO', 'ReferencedSegmentNumber'),
      ],
      [
        el(0x00209164, 'UI', dimensionOrganizationUID),
        el(0x00209165, 'AT', [0x00200032]),
        el(0x00209167, 'AT', [0x00209113]),
        el(0x00209421, 'LO', 'ImagePositionPatient'),
      ],
    ]),
    // Common Instance Reference: the whole reference series
    el(0x00081115, 'SQ', [
      [
        el(0x0020000e, 'UI', ref.seriesInstanceUID),
        el(0x0008114a, 'SQ', [...new Set(sops)].map((uid) => [el(0x00081150, 'UI', ref.sopClassUID!), el(0x00081155, 'UI', uid)])),
      ],
    ]),
    el(0x7fe00010, 'OB', pixelBytes),
  ];

  return { bytes: writePart10(ds), sopInstanceUID, seriesInstanceUID, framesPerSegment, numberOfFrames: frames.length };
}

function segmentItem(s: SegmentDefinition, number: number, algorithm: SegAlgorithm): DataSet {
  return [
    el(0x00620004, 'US', number), // SegmentNumber
    el(0x00620005, 'LO', s.name), // SegmentLabel
    el(0x00620008, 'CS', 'AUTOMATIC'), // SegmentAlgorithmType
    el(0x00620009, 'LO', `${algorithm.name} ${algorithm.version}`), // SegmentAlgorithmName
    el(0x0062000d, 'US', srgbToDicomLab(s.color)), // RecommendedDisplayCIELabValue
    el(0x00620003, 'SQ', [code(s.category)]), // SegmentedPropertyCategoryCodeSequence
    el(0x0062000f, 'SQ', [code(s.type)]), // SegmentedPropertyTypeCodeSequence
  ];
}
