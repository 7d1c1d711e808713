/**
 * Loads one DICOM series (a folder or a list of files) as a Volume. Slices are ordered by their
 * position along the slice normal, never by file name or InstanceNumber, and the series is checked to
 * be one regular volume; every failure names the series, the problem and, where there is one, the file.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { cross, dot, type Vec3, type Volume } from '../volume.js';
import { decodeFrame } from './pixels.js';
import { parseDicomFile, type FrameHeader, type ParsedFile } from './parse.js';

export interface LoadSeriesOptions {
  /** Name used in error messages (default: the folder, or the folder of the first file). */
  name?: string;
  /** Files read at once (default 16): enough to hide disk latency without holding the whole folder twice. */
  concurrency?: number;
  /** Allowed deviation of a slice gap from the mean gap, as a fraction of it (default 0.01), at least 0.01 mm. */
  spacingTolerance?: number;
  signal?: AbortSignal;
}

interface Slice {
  file: ParsedFile;
  frame: FrameHeader;
  position: number;
}

/** Files a folder holds that can be part of a series: hidden files and DICOMDIR indexes are skipped. */
async function listSeriesFiles(dir: string): Promise<string[]> {
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && !e.name.startsWith('.') && e.name.toUpperCase() !== 'DICOMDIR')
    .map((e) => path.join(dir, e.name))
    .sort();
}

async function mapBounded<T, R>(items: T[], limit: number, signal: AbortSignal | undefined, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    // After the first failure the other workers stop taking files: the load is lost anyway.
    while (next < items.length && !failed) {
      signal?.throwIfAborted();
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export async function loadSeries(input: string | string[], opts: LoadSeriesOptions = {}): Promise<Volume> {
  const name = opts.name ?? (typeof input === 'string' ? input : input[0] ? path.dirname(input[0]) : 'empty file list');
  const fail = (problem: string): Error => new Error(`series ${name}: ${problem}`);
  let files: string[];
  if (typeof input === 'string') {
    try {
      files = await listSeriesFiles(input);
    } catch (e) {
      throw fail(`cannot read the folder (${(e as Error).message})`);
    }
  } else files = [...input];
  if (files.length === 0) throw fail('no DICOM files found');

  const parsed = await mapBounded(files, opts.concurrency ?? 16, opts.signal, async (file) => {
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(file, { signal: opts.signal });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      throw fail(`cannot read ${path.basename(file)} (${(e as Error).message})`);
    }
    try {
      return parseDicomFile(file, bytes);
    } catch (e) {
      throw fail((e as Error).message);
    }
  });
  return assembleVolume(parsed, name, opts.spacingTolerance ?? 0.01);
}

/** Checks that the parsed files form one regular volume and stacks them (exported for tests). */
export function assembleVolume(parsed: ParsedFile[], name: string, spacingTolerance = 0.01): Volume {
  const fail = (problem: string, file?: ParsedFile | string): Error => {
    const f = typeof file === 'string' ? file : file?.file;
    return new Error(`series ${name}: ${problem}${f ? ` (file ${path.basename(f)})` : ''}`);
  };
  const first = parsed[0];
  if (!first) throw fail('no DICOM files found');

  // One series, one study, one frame of reference.
  const bySeries = new Map<string, ParsedFile[]>();
  for (const p of parsed) {
    const list = bySeries.get(p.seriesInstanceUID);
    if (list) list.push(p);
    else bySeries.set(p.seriesInstanceUID, [p]);
  }
  if (bySeries.size > 1) {
    const parts = [...bySeries].map(([uid, ps]) => `${uid || '(none)'}: ${ps.length} file(s), e.g. ${path.basename(ps[0]!.file)}`);
    throw fail(`mixed series: the files belong to ${bySeries.size} different SeriesInstanceUIDs (${parts.join('; ')})`);
  }
  if (!first.seriesInstanceUID) throw fail('SeriesInstanceUID missing', first);
  if (!first.frameOfReferenceUID) throw fail('FrameOfReferenceUID missing: the series has no patient coordinate system', first);
  for (const p of parsed) {
    const same = (what: string, a: unknown, b: unknown): void => {
      if (a !== b) throw fail(`inconsistent ${what}: ${String(b)} here, ${String(a)} in ${path.basename(first.file)}`, p);
    };
    same('StudyInstanceUID', first.studyInstanceUID, p.studyInstanceUID);
    same('FrameOfReferenceUID', first.frameOfReferenceUID, p.frameOfReferenceUID);
    same('Rows', first.rows, p.rows);
    same('Columns', first.columns, p.columns);
    same('BitsAllocated', first.bitsAllocated, p.bitsAllocated);
  }

  // In-plane geometry: one orientation and pixel spacing for every frame.
  const f0 = first.frames[0]!;
  const row = f0.iop.slice(0, 3) as Vec3;
  const col = f0.iop.slice(3, 6) as Vec3;
  if (Math.abs(dot(row, row) - 1) > 1e-3 || Math.abs(dot(col, col) - 1) > 1e-3 || Math.abs(dot(row, col)) > 1e-3) {
    throw fail(`ImageOrientationPatient ${f0.iop.join('\\')} is not two orthogonal unit vectors`, first);
  }
  const normal = cross(row, col);
  const slices: Slice[] = [];
  for (const p of parsed) {
    for (const fr of p.frames) {
      if (fr.iop.some((v, i) => Math.abs(v - f0.iop[i]!) > 1e-4)) {
        throw fail(`inconsistent ImageOrientationPatient: ${fr.iop.join('\\')} here, ${f0.iop.join('\\')} in ${path.basename(first.file)}`, p);
      }
      if (fr.pixelSpacing.some((v, i) => Math.abs(v - f0.pixelSpacing[i]!) > 1e-4 * Math.max(1, v))) {
        throw fail(`inconsistent PixelSpacing: ${fr.pixelSpacing.join('\\')} here, ${f0.pixelSpacing.join('\\')} in ${path.basename(first.file)}`, p);
      }
      slices.push({ file: p, frame: fr, position: dot(fr.ipp, normal) });
    }
  }
  slices.sort((a, b) => a.position - b.position);

  // Through-plane: distinct, evenly spaced positions along the normal, stacked without shear.
  const nz = slices.length;
  const label = (s: Slice): string => `${path.basename(s.file.file)}${s.file.frames.length > 1 ? ` frame ${s.frame.frame}` : ''}`;
  let dz = 1;
  if (nz > 1) {
    const gaps: number[] = [];
    for (let k = 1; k < nz; k++) {
      const g = slices[k]!.position - slices[k - 1]!.position;
      if (g < 1e-3) {
        throw fail(`two slices at the same position ${slices[k]!.position.toFixed(3)} mm along the normal: ${label(slices[k - 1]!)} and ${label(slices[k]!)} (duplicate or mixed acquisitions)`, slices[k]!.file);
      }
      gaps.push(g);
    }
    const sorted = [...gaps].sort((a, b) => a - b);
    const typical = sorted[Math.floor(sorted.length / 2)]!;
    const tol = Math.max(0.01, spacingTolerance * typical);
    for (let k = 0; k < gaps.length; k++) {
      const g = gaps[k]!;
      if (Math.abs(g - typical) <= tol) continue;
      const a = slices[k]!;
      const b = slices[k + 1]!;
      const n = Math.round(g / typical);
      if (n >= 2 && Math.abs(g - n * typical) <= tol * n) {
        throw fail(
          `missing slice: ${n - 1} slice(s) absent between positions ${a.position.toFixed(2)} and ${b.position.toFixed(2)} mm ` +
            `(files ${label(a)} and ${label(b)}; gap ${g.toFixed(2)} mm, slice spacing ${typical.toFixed(2)} mm)`,
          b.file,
        );
      }
      throw fail(`uneven slice spacing: gap of ${g.toFixed(3)} mm between ${label(a)} and ${label(b)}, ${typical.toFixed(3)} mm elsewhere`, b.file);
    }
    dz = (slices[nz - 1]!.position - slices[0]!.position) / (nz - 1);
    // Slices must lie on one line along the normal (no gantry tilt / shear, no side-by-side stacks).
    const o = slices[0]!.frame.ipp;
    for (const s of slices) {
      const d: Vec3 = [s.frame.ipp[0] - o[0], s.frame.ipp[1] - o[1], s.frame.ipp[2] - o[2]];
      const along = dot(d, normal);
      const off = Math.hypot(d[0] - along * normal[0], d[1] - along * normal[1], d[2] - along * normal[2]);
      if (off > Math.max(0.05, 0.05 * Math.min(...f0.pixelSpacing))) {
        throw fail(`slices are not stacked along the slice normal (in-plane offset ${off.toFixed(2)} mm; gantry tilt?)`, s.file);
      }
    }
  }

  // Stack the frames in position order, rescaling each with its own slope/intercept.
  const nx = first.columns;
  const ny = first.rows;
  const plane = nx * ny;
  const frameBytes = plane * (first.bitsAllocated / 8);
  const data = new Float32Array(plane * nz);
  slices.forEach((s, k) => {
    const p = s.file;
    decodeFrame(p.bytes, p.pixelOffset + (s.frame.frame - 1) * frameBytes, plane, p, s.frame.slope, s.frame.intercept, data, k * plane);
  });

  const multiFrame = parsed.some((p) => p.frames.length > 1);
  return {
    dims: [nx, ny, nz],
    // PixelSpacing is [spacing between rows, spacing between columns] = [y, x].
    spacing: [f0.pixelSpacing[1]!, f0.pixelSpacing[0]!, dz],
    origin: [...slices[0]!.frame.ipp],
    direction: { row, col, normal },
    data,
    frameOfReferenceUID: first.frameOfReferenceUID,
    studyInstanceUID: first.studyInstanceUID,
    seriesInstanceUID: first.seriesInstanceUID,
    sopClassUID: first.sopClassUID,
    sopInstanceUIDs: slices.map((s) => s.file.sopInstanceUID),
    ...(multiFrame && { frameNumbers: slices.map((s) => s.frame.frame) }),
    dicom: { ...first.patientStudy },
    source: name,
  };
}
