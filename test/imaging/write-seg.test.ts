import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fsp, writeFileSync } from 'node:fs';
import path from 'node:path';
import dicomParser from 'dicom-parser';
import { loadSeries } from '../../lab-agent/src/imaging/dicom/load-series.js';
import { writeSeg } from '../../lab-agent/src/imaging/seg/write-seg.js';
import { BRATS_SEGMENTS, srgbToDicomLab } from '../../lab-agent/src/imaging/seg/segments.js';
import { synthesizePhantom } from '../../lab-agent/src/phantom/synthesize.js';
import { writePhantomStudy } from '../../lab-agent/src/phantom/write-study.js';
import type { Volume } from '../../lab-agent/src/imaging/volume.js';
import { hasCommand, mrSlice, tempDir } from './helpers.js';
import { el, newUid, writePart10 } from '../../lab-agent/src/imaging/dicom/write.js';

// Debian's python3 (with pydicom/numpy), not a pyenv one on PATH; overridable for other machines.
const PYTHON = process.env.PYDICOM_PYTHON ?? '/usr/bin/python3';
const hasDciodvfy = hasCommand('dciodvfy', []);
const hasPydicom = spawnSync(PYTHON, ['-c', 'import pydicom, numpy'], { stdio: 'ignore' }).status === 0;
if (!hasDciodvfy) console.warn('SKIPPED: dciodvfy not installed (Debian dicom3tools): SEG IOD validation tests are skipped');
if (!hasPydicom) console.warn(`SKIPPED: pydicom not installed for ${PYTHON} (Debian python3-pydicom): SEG read-back tests are skipped`);
const maybeDciodvfy = hasDciodvfy ? it : it.skip;
const maybePydicom = hasPydicom ? it : it.skip;
const CHECKER = path.resolve('test/python/read_seg.py');

/** dciodvfy's findings; it prints them on stderr. */
function dciodvfy(file: string): { errors: string[]; warnings: string[] } {
  const r = spawnSync('dciodvfy', [file], { encoding: 'utf8', timeout: 30000 });
  const lines = `${r.stdout}\n${r.stderr}`.split('\n');
  return { errors: lines.filter((l) => /^Error/.test(l)), warnings: lines.filter((l) => /^Warning/.test(l)) };
}

describe('writeSeg', () => {
  const tmp = tempDir('seg');
  let ref: Volume;
  let labels: Uint8Array;
  let flairDir: string;
  const algorithm = { name: 'demo-segresnet', version: '0.1.0' };

  beforeAll(async () => {
    const phantom = synthesizePhantom({ seed: 5, size: [48, 40, 24], spacing: [4, 4.5, 5] });
    await writePhantomStudy(phantom, tmp.dir, { patient: { name: 'DOE^JANE', id: 'PAT-7', birthDate: '19800202' }, shuffle: true });
    flairDir = path.join(tmp.dir, 'flair');
    ref = await loadSeries(flairDir);
    labels = phantom.labels;
  });
  afterAll(() => tmp.cleanup());

  it('writes frames only for slices holding each segment, with identity and references from the reference series', async () => {
    const seg = writeSeg({ labels, reference: ref, segments: BRATS_SEGMENTS, algorithm });
    const [nx, ny, nz] = ref.dims;
    const expected = BRATS_SEGMENTS.map((s) => {
      let n = 0;
      for (let k = 0; k < nz; k++) if (labels.subarray(k * nx * ny, (k + 1) * nx * ny).includes(s.labelValue)) n++;
      return n;
    });
    expect(seg.framesPerSegment).toEqual(expected);
    expect(seg.numberOfFrames).toBe(expected.reduce((a, b) => a + b, 0));
    expect(expected.every((n) => n > 0)).toBe(true);

    const ds = dicomParser.parseDicom(seg.bytes);
    expect(ds.string('x00020010')).toBe('1.2.840.10008.1.2.1');
    expect(ds.string('x00080016')).toBe('1.2.840.10008.5.1.4.1.1.66.4');
    expect(ds.string('x00100010')).toBe('DOE^JANE');
    expect(ds.string('x00100020')).toBe('PAT-7');
    expect(ds.string('x00100030')).toBe('19800202');
    expect(ds.string('x0020000d')).toBe(ref.studyInstanceUID);
    expect(ds.string('x00200052')).toBe(ref.frameOfReferenceUID);
    expect(ds.string('x00620001')).toBe('BINARY');
    const refSeries = ds.elements.x00081115!.items![0]!.dataSet!;
    expect(refSeries.string('x0020000e')).toBe(ref.seriesInstanceUID);
    expect(refSeries.elements.x0008114a!.items).toHaveLength(nz);
    const segs = ds.elements.x00620002!.items!.map((i) => i.dataSet!);
    expect(segs.map((s) => s.elements.x0062000f!.items![0]!.dataSet!.string('x00080100'))).toEqual(['6574001', '79654002', 'C113842']);
    expect(segs.every((s) => s.string('x00620008') === 'AUTOMATIC' && s.string('x00620009') === 'demo-segresnet 0.1.0')).toBe(true);
    const frame0 = ds.elements.x52009230!.items![0]!.dataSet!;
    const src = frame0.elements.x00089124!.items![0]!.dataSet!.elements.x00082112!.items![0]!.dataSet!;
    expect(ref.sopInstanceUIDs).toContain(src.string('x00081155'));
    // 1 bit per pixel: the pixel data holds exactly the frames' bits, rounded up to an even byte count.
    expect(ds.elements.x7fe00010!.length).toBe(Math.ceil((seg.numberOfFrames * nx * ny) / 16) * 2);
  });

  it('writes one empty frame when nothing was found (a SEG may not have zero frames)', () => {
    const seg = writeSeg({ labels: new Uint8Array(labels.length), reference: ref, segments: BRATS_SEGMENTS, algorithm });
    expect(seg.numberOfFrames).toBe(1);
    expect(seg.framesPerSegment).toEqual([0, 0, 0]);
    const ds = dicomParser.parseDicom(seg.bytes);
    expect(ds.intString('x00280008')).toBe(1);
    const px = ds.elements.x7fe00010!;
    expect(ds.byteArray.subarray(px.dataOffset, px.dataOffset + px.length).every((b) => b === 0)).toBe(true);
  });

  it('refuses a label map of the wrong size or a reference without DICOM identity', () => {
    expect(() => writeSeg({ labels: new Uint8Array(10), reference: ref, segments: BRATS_SEGMENTS, algorithm })).toThrow(/label map has 10 voxels/);
    const { sopInstanceUIDs: _drop, ...bare } = ref;
    expect(() => writeSeg({ labels, reference: bare, segments: BRATS_SEGMENTS, algorithm })).toThrow(/lacks its DICOM identity/);
  });

  it('encodes display colours as DICOM CIELab', () => {
    expect(srgbToDicomLab([255, 255, 255])).toEqual([65535, expect.any(Number), expect.any(Number)]);
    const [, a, b] = srgbToDicomLab([255, 255, 255]);
    expect(Math.abs(a - 32896)).toBeLessThan(80); // a* = b* = 0 maps to 128/255 of full scale
    expect(Math.abs(b - 32896)).toBeLessThan(80);
    expect(srgbToDicomLab([0, 0, 0])[0]).toBe(0);
  });

  it('references frames of a multi-frame reference with ReferencedFrameNumber', () => {
    const nz = ref.dims[2];
    const mf: Volume = { ...ref, sopClassUID: '1.2.840.10008.5.1.4.1.1.4.1', sopInstanceUIDs: Array(nz).fill(ref.sopInstanceUIDs![0]), frameNumbers: Array.from({ length: nz }, (_, k) => nz - k) };
    const seg = writeSeg({ labels, reference: mf, segments: BRATS_SEGMENTS, algorithm });
    const ds = dicomParser.parseDicom(seg.bytes);
    const frames = ds.elements.x52009230!.items!.map((i) => i.dataSet!);
    const srcOf = (f: (typeof frames)[number]) => f.elements.x00089124!.items![0]!.dataSet!.elements.x00082112!.items![0]!.dataSet!;
    const slices = frames.map((f) => f.elements.x00209111!.items![0]!.dataSet!.uint32('x00209157', 1)! - 1);
    frames.forEach((f, i) => expect(srcOf(f).intString('x00081160')).toBe(nz - slices[i]!));
    // The whole reference instance is listed once.
    expect(ds.elements.x00081115!.items![0]!.dataSet!.elements.x0008114a!.items).toHaveLength(1);
    if (hasDciodvfy) {
      const file = path.join(tmp.dir, 'mf-seg.dcm');
      writeFileSync(file, seg.bytes);
      expect(dciodvfy(file).errors).toEqual([]);
    }
  });

  it('keeps the reference character set so copied names keep their bytes (UTF-8 name)', async () => {
    const dir = path.join(tmp.dir, 'utf8');
    await fsp.mkdir(dir);
    const ids = { series: newUid(), study: newUid(), frameOfReference: newUid() };
    const name = 'Müller^Jürgen';
    const extra = [el(0x00080005, 'CS', 'ISO_IR 192'), el(0x00100010, 'PN', Buffer.from(name, 'utf8').toString('latin1')), el(0x00100020, 'LO', 'U-1')];
    for (let k = 0; k < 3; k++) await fsp.writeFile(path.join(dir, `${k}.dcm`), writePart10(mrSlice({ ...ids, ipp: [0, 0, 2 * k], extra })));
    const v = await loadSeries(dir);
    const seg = writeSeg({ labels: new Uint8Array(8 * 8 * 3).fill(2, 70, 80), reference: v, segments: BRATS_SEGMENTS, algorithm });
    const ds = dicomParser.parseDicom(seg.bytes);
    expect(ds.string('x00080005')).toBe('ISO_IR 192');
    expect(Buffer.from(ds.string('x00100010')!, 'latin1').toString('utf8')).toBe(name);
    if (hasPydicom) {
      const file = path.join(tmp.dir, 'utf8-seg.dcm');
      await fsp.writeFile(file, seg.bytes);
      const out = execFileSync(PYTHON, ['-c', 'import sys,pydicom; print(str(pydicom.dcmread(sys.argv[1]).PatientName))', file], { encoding: 'utf8' });
      expect(out.trim()).toBe(name);
    }
  });

  maybeDciodvfy('passes dciodvfy with no errors (with tumour and when empty)', async () => {
    for (const [name, lm] of [['seg.dcm', labels], ['empty.dcm', new Uint8Array(labels.length)]] as const) {
      const file = path.join(tmp.dir, name);
      await fsp.writeFile(file, writeSeg({ labels: lm, reference: ref, segments: BRATS_SEGMENTS, algorithm }).bytes);
      const r = dciodvfy(file);
      expect(r.errors).toEqual([]);
      if (r.warnings.length) console.warn(`dciodvfy warnings for ${name}:\n${r.warnings.join('\n')}`);
    }
  });

  maybePydicom('reads back with pydicom to the same label map', async () => {
    for (const [name, lm] of [['seg-py.dcm', labels], ['empty-py.dcm', new Uint8Array(labels.length)]] as const) {
      const file = path.join(tmp.dir, name);
      const out = path.join(tmp.dir, `${name}.u8`);
      await fsp.writeFile(file, writeSeg({ labels: lm, reference: ref, segments: BRATS_SEGMENTS, algorithm }).bytes);
      const summary = JSON.parse(execFileSync(PYTHON, [CHECKER, file, flairDir, out], { encoding: 'utf8', timeout: 60000 })) as { voxels: number; patient_id_matches: boolean };
      const back = new Uint8Array(await fsp.readFile(out));
      expect(back.length).toBe(lm.length);
      expect(Buffer.from(back).equals(Buffer.from(lm))).toBe(true);
      expect(summary.patient_id_matches).toBe(true);
    }
  });
});
