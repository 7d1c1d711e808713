/**
 * Writes a synthesized phantom as a four-series MR study of real single-frame DICOM files
 * (DIR/t1, t1c, t2, flair) plus DIR/truth.json, in the layout `lab-agent segment --study` reads.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { el, newUid, TS, writePart10, type DataSet } from '../imaging/dicom/write.js';
import { resampleToReference } from '../imaging/resample.js';
import { slicePosition, type Vec3, type Volume } from '../imaging/volume.js';
import { phantomGrid, phantomVolume } from './geometry.js';
import { createRng } from './random.js';
import { MODALITIES, type Modality, type Phantom } from './synthesize.js';

export const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';

export interface PatientIdentity {
  name: string;
  id: string;
  /** YYYYMMDD or '' (unknown). */
  birthDate: string;
  sex: string;
}

export interface WriteStudyOptions {
  /** Write T1/T1c/T2 on a different grid (spacing, size, offset) than FLAIR, same frame of reference. */
  geometryDiffer?: boolean;
  /** Drop one file: the slice at `index` (0 = most inferior) of `modality`. */
  missingSlice?: { modality: Modality; index: number };
  /** File names (and InstanceNumbers) in an order unrelated to slice position. */
  shuffle?: boolean;
  implicitVR?: boolean;
  /** Overrides `implicitVR`: any transfer syntax the writer encodes (e.g. explicit VR big endian). */
  transferSyntaxUID?: string;
  patient?: Partial<PatientIdentity>;
  /** Date used for study/series/content dates (default now). */
  now?: Date;
}

export interface WrittenSeries {
  modality: Modality;
  dir: string;
  seriesInstanceUID: string;
  files: string[];
  dims: Vec3;
  spacing: Vec3;
  origin: Vec3;
}

export interface WrittenStudy {
  studyInstanceUID: string;
  frameOfReferenceUID: string;
  series: Record<Modality, WrittenSeries>;
  truthFile: string;
}

// Stored = (value - intercept) / slope; a non-trivial rescale so that readers must apply it.
const RESCALE_SLOPE = 0.25;
const RESCALE_INTERCEPT = -20;

const PROTOCOL: Record<Modality, { description: string; seq: string[]; variant: string[]; tr: number; te: number; ti?: number; contrast?: string }> = {
  t1: { description: 'T1 SE AX', seq: ['SE'], variant: ['NONE'], tr: 500, te: 10 },
  t1c: { description: 'T1 SE AX +C', seq: ['SE'], variant: ['NONE'], tr: 500, te: 10, contrast: 'GADOLINIUM' },
  t2: { description: 'T2 TSE AX', seq: ['SE'], variant: ['SK'], tr: 4000, te: 100 },
  flair: { description: 'T2 FLAIR AX', seq: ['SE', 'IR'], variant: ['SK', 'MP'], tr: 9000, te: 120, ti: 2500 },
};

function dicomDate(d: Date): string {
  return d.toISOString().slice(0, 10).replace(/-/g, '');
}
function dicomTime(d: Date): string {
  return d.toISOString().slice(11, 19).replace(/:/g, '');
}

/** The grid T1/T1c/T2 get with `geometryDiffer`: coarser in-plane and through-plane, shifted. */
export function differingGrid(size: Vec3, spacing: Vec3): ReturnType<typeof phantomGrid> {
  const sp: Vec3 = [spacing[0] * 1.2, spacing[1] * 1.2, spacing[2] * 1.5];
  const sz: Vec3 = [Math.round((size[0] * spacing[0]) / sp[0]), Math.round((size[1] * spacing[1]) / sp[1]), Math.round((size[2] * spacing[2]) / sp[2])];
  return phantomGrid(sz, sp, [3.1, -2.3, 1.7]);
}

export async function writePhantomStudy(phantom: Phantom, outDir: string, opts: WriteStudyOptions = {}): Promise<WrittenStudy> {
  const now = opts.now ?? new Date();
  const patient: PatientIdentity = {
    name: opts.patient?.name ?? 'PHANTOM^SYNTHETIC',
    id: opts.patient?.id ?? `PHANTOM-${phantom.seed}`,
    birthDate: opts.patient?.birthDate ?? '',
    sex: opts.patient?.sex ?? 'O',
  };
  if (patient.birthDate && !/^\d{8}$/.test(patient.birthDate)) throw new Error(`birth date must be YYYYMMDD, got an invalid value`);
  const studyInstanceUID = newUid();
  const frameOfReferenceUID = newUid();
  const study = { studyInstanceUID, frameOfReferenceUID, date: dicomDate(now), time: dicomTime(now), accession: `ACC${phantom.seed}`, patient };
  // Shuffling is seeded too, so a given phantom + options always gives the same files.
  const rng = createRng(phantom.seed ^ 0x5eed);

  if (opts.missingSlice) {
    const { modality, index } = opts.missingSlice;
    const nz = opts.geometryDiffer && modality !== 'flair' ? differingGrid(phantom.size, phantom.spacing).dims[2] : phantom.size[2];
    if (!Number.isInteger(index) || index < 0 || index >= nz) throw new Error(`missing slice index ${index} is outside ${modality}'s 0..${nz - 1}`);
  }
  // Stale files from an earlier run would silently join the new series (and then fail as mixed series).
  for (const m of MODALITIES) {
    const entries = await fsp.readdir(path.join(outDir, m)).catch(() => [] as string[]);
    if (entries.length > 0) throw new Error(`output folder ${path.join(outDir, m)} is not empty; remove it or choose another --out`);
  }
  await fsp.mkdir(outDir, { recursive: true });
  const series = {} as Record<Modality, WrittenSeries>;
  for (const [mi, modality] of MODALITIES.entries()) {
    let vol: Volume = phantomVolume(phantom, modality, frameOfReferenceUID);
    if (opts.geometryDiffer && modality !== 'flair') {
      vol = resampleToReference(vol, { ...differingGrid(phantom.size, phantom.spacing), frameOfReferenceUID });
    }
    series[modality] = await writeMrSeries(vol, path.join(outDir, modality), {
      modality,
      seriesNumber: mi + 1,
      study,
      transferSyntaxUID: opts.transferSyntaxUID ?? (opts.implicitVR ? TS.implicitLittle : TS.explicitLittle),
      shuffle: opts.shuffle ? rng : undefined,
      dropIndex: opts.missingSlice?.modality === modality ? opts.missingSlice.index : undefined,
    });
  }

  const truthFile = path.join(outDir, 'truth.json');
  const labelsFile = 'labels.u8';
  await fsp.writeFile(path.join(outDir, labelsFile), phantom.labels);
  const flair = series.flair;
  const truth = {
    volumes_ml: phantom.truth.volumes_ml,
    whole_tumor_ml: phantom.truth.whole_tumor_ml,
    seed: phantom.seed,
    size: phantom.size,
    spacing: phantom.spacing,
    // The label map (uint8, x fastest, 0 bg / 1 necrotic core / 2 oedema / 3 enhancing) on the FLAIR grid.
    labels_file: labelsFile,
    labels_grid: { reference: 'flair', dims: flair.dims, spacing: flair.spacing, origin: flair.origin },
  };
  await fsp.writeFile(truthFile, JSON.stringify(truth, null, 2) + '\n');
  return { studyInstanceUID, frameOfReferenceUID, series, truthFile };
}

export interface StudyIdentity {
  studyInstanceUID: string;
  frameOfReferenceUID: string;
  /** YYYYMMDD, HHMMSS. */
  date: string;
  time: string;
  accession: string;
  patient: PatientIdentity;
}

export interface SeriesOptions {
  modality: Modality;
  seriesNumber: number;
  study: StudyIdentity;
  transferSyntaxUID: string;
  /** Shuffle file names/InstanceNumbers with this generator. */
  shuffle?: ReturnType<typeof createRng> | undefined;
  /** Leave out the slice with this index. */
  dropIndex?: number | undefined;
}

/** Writes any axial or oblique Volume as a single-frame MR series (one file per slice k). */
export async function writeMrSeries(vol: Volume, dir: string, o: SeriesOptions): Promise<WrittenSeries> {
  const [nx, ny, nz] = vol.dims;
  if (o.dropIndex !== undefined && (o.dropIndex < 0 || o.dropIndex >= nz)) {
    throw new Error(`missing slice index ${o.dropIndex} is outside ${o.modality}'s 0..${nz - 1}`);
  }
  await fsp.mkdir(dir, { recursive: true });
  const seriesInstanceUID = newUid();
  const p = PROTOCOL[o.modality];
  // order[k] = the file/instance number given to slice k.
  const order = Array.from({ length: nz }, (_, k) => k);
  if (o.shuffle) {
    for (let i = nz - 1; i > 0; i--) {
      const j = Math.floor(o.shuffle.next() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
  }
  const sliceBytes = nx * ny * 2;
  const files: string[] = [];
  const iop = [...vol.direction.row, ...vol.direction.col];
  for (let k = 0; k < nz; k++) {
    if (k === o.dropIndex) continue;
    const pixels = new Int16Array(nx * ny);
    const base = k * nx * ny;
    for (let q = 0; q < nx * ny; q++) {
      const s = Math.round((vol.data[base + q]! - RESCALE_INTERCEPT) / RESCALE_SLOPE);
      pixels[q] = s > 32767 ? 32767 : s < -32768 ? -32768 : s;
    }
    const ipp = slicePosition(vol, k);
    const sliceLocation = ipp[0] * vol.direction.normal[0] + ipp[1] * vol.direction.normal[1] + ipp[2] * vol.direction.normal[2];
    const ds: DataSet = [
      el(0x00080005, 'CS', 'ISO_IR 100'),
      el(0x00080008, 'CS', ['ORIGINAL', 'PRIMARY', 'OTHER']),
      el(0x00080016, 'UI', MR_IMAGE_STORAGE),
      el(0x00080018, 'UI', newUid()),
      el(0x00080020, 'DA', o.study.date),
      el(0x00080021, 'DA', o.study.date),
      el(0x00080023, 'DA', o.study.date),
      el(0x00080030, 'TM', o.study.time),
      el(0x00080031, 'TM', o.study.time),
      el(0x00080033, 'TM', o.study.time),
      el(0x00080050, 'SH', o.study.accession),
      el(0x00080060, 'CS', 'MR'),
      el(0x00080070, 'LO', 'lab-relay phantom'),
      el(0x00080090, 'PN', ''),
      el(0x00081030, 'LO', 'MRI BRAIN PHANTOM'),
      el(0x0008103e, 'LO', p.description),
      el(0x00100010, 'PN', o.study.patient.name),
      el(0x00100020, 'LO', o.study.patient.id),
      el(0x00100030, 'DA', o.study.patient.birthDate),
      el(0x00100040, 'CS', o.study.patient.sex),
      el(0x00180010, 'LO', p.contrast ?? ''),
      el(0x00180015, 'CS', 'BRAIN'),
      el(0x00180020, 'CS', p.seq),
      el(0x00180021, 'CS', p.variant),
      el(0x00180022, 'CS', ''),
      el(0x00180023, 'CS', '2D'),
      el(0x00180050, 'DS', vol.spacing[2]),
      el(0x00180080, 'DS', p.tr),
      el(0x00180081, 'DS', p.te),
      ...(p.ti !== undefined ? [el(0x00180082, 'DS', p.ti)] : []),
      el(0x00180087, 'DS', 1.5),
      el(0x00180088, 'DS', vol.spacing[2]),
      el(0x00180091, 'IS', 1),
      el(0x00185100, 'CS', 'HFS'),
      el(0x0020000d, 'UI', o.study.studyInstanceUID),
      el(0x0020000e, 'UI', seriesInstanceUID),
      el(0x00200010, 'SH', '1'),
      el(0x00200011, 'IS', o.seriesNumber),
      el(0x00200013, 'IS', order[k]! + 1),
      el(0x00200032, 'DS', ipp),
      el(0x00200037, 'DS', iop),
      el(0x00200052, 'UI', o.study.frameOfReferenceUID),
      el(0x00201040, 'LO', ''),
      el(0x00201041, 'DS', sliceLocation),
      el(0x00280002, 'US', 1),
      el(0x00280004, 'CS', 'MONOCHROME2'),
      el(0x00280010, 'US', ny),
      el(0x00280011, 'US', nx),
      el(0x00280030, 'DS', [vol.spacing[1], vol.spacing[0]]), // PixelSpacing is row spacing \ column spacing
      el(0x00280100, 'US', 16),
      el(0x00280101, 'US', 16),
      el(0x00280102, 'US', 15),
      el(0x00280103, 'US', 1),
      el(0x00281050, 'DS', 600),
      el(0x00281051, 'DS', 1200),
      el(0x00281052, 'DS', RESCALE_INTERCEPT),
      el(0x00281053, 'DS', RESCALE_SLOPE),
      el(0x00281054, 'LO', 'US'),
      el(0x7fe00010, 'OW', new Uint8Array(pixels.buffer, 0, sliceBytes)),
    ];
    const file = path.join(dir, `IM${String(order[k]! + 1).padStart(4, '0')}.dcm`);
    await fsp.writeFile(file, writePart10(ds, { transferSyntaxUID: o.transferSyntaxUID }));
    files.push(file);
  }
  return { modality: o.modality, dir, seriesInstanceUID, files, dims: [...vol.dims], spacing: [...vol.spacing], origin: [...vol.origin] };
}
