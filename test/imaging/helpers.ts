import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { el, newUid, type DataSet } from '../../lab-agent/src/imaging/dicom/write.js';
import type { Vec3 } from '../../lab-agent/src/imaging/volume.js';

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `labrelay-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function hasCommand(cmd: string, args: string[] = ['--version']): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 20000 });
    return true;
  } catch (e) {
    // A tool that exists but exits non-zero for --version still counts as present.
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** A minimal single-frame MR slice data set for hand-made negative cases. */
export function mrSlice(o: {
  series: string;
  frameOfReference: string;
  study: string;
  ipp: Vec3;
  iop?: number[];
  rows?: number;
  cols?: number;
  spacing?: [number, number];
  value?: number;
  /** More elements (e.g. patient module) added to the slice. */
  extra?: DataSet;
}): DataSet {
  const rows = o.rows ?? 8;
  const cols = o.cols ?? 8;
  const px = new Int16Array(rows * cols).fill(o.value ?? 100);
  return [
    el(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.4'),
    el(0x00080018, 'UI', newUid()),
    el(0x00080060, 'CS', 'MR'),
    el(0x0020000d, 'UI', o.study),
    el(0x0020000e, 'UI', o.series),
    el(0x00200032, 'DS', o.ipp),
    el(0x00200037, 'DS', o.iop ?? [1, 0, 0, 0, 1, 0]),
    el(0x00200052, 'UI', o.frameOfReference),
    el(0x00280002, 'US', 1),
    el(0x00280004, 'CS', 'MONOCHROME2'),
    el(0x00280010, 'US', rows),
    el(0x00280011, 'US', cols),
    el(0x00280030, 'DS', o.spacing ?? [1, 1]),
    el(0x00280100, 'US', 16),
    el(0x00280101, 'US', 16),
    el(0x00280102, 'US', 15),
    el(0x00280103, 'US', 1),
    el(0x7fe00010, 'OW', new Uint8Array(px.buffer)),
    ...(o.extra ?? []),
  ];
}
