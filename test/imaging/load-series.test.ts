import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { loadSeries } from '../../lab-agent/src/imaging/dicom/load-series.js';
import { el, newUid, TS, writePart10 } from '../../lab-agent/src/imaging/dicom/write.js';
import { synthesizePhantom, MODALITIES, type Phantom } from '../../lab-agent/src/phantom/synthesize.js';
import { writePhantomStudy, writeMrSeries, type StudyIdentity } from '../../lab-agent/src/phantom/write-study.js';
import { indexToPatient, type Vec3, type Volume } from '../../lab-agent/src/imaging/volume.js';
import { mrSlice, tempDir } from './helpers.js';

const SIZE: Vec3 = [48, 40, 24];
const SPACING: Vec3 = [4, 4.5, 5];
// Stored values are (v + 20) / 0.25 rounded: at most 0.125 off after rescale.
const INT16_ROUNDING = 0.125 + 1e-4;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('loadSeries', () => {
  let phantom: Phantom;
  const tmp = tempDir('load');
  beforeAll(() => {
    phantom = synthesizePhantom({ seed: 21, size: SIZE, spacing: SPACING });
  });
  afterAll(() => tmp.cleanup());

  it('round-trips every phantom series through DICOM (geometry, identity, values within int16 rounding)', async () => {
    const dir = path.join(tmp.dir, 'plain');
    const study = await writePhantomStudy(phantom, dir, { patient: { name: 'DOE^JANE', id: 'ID-42', birthDate: '19700101' } });
    for (const m of MODALITIES) {
      const v = await loadSeries(path.join(dir, m));
      expect(v.dims).toEqual(SIZE);
      for (let a = 0; a < 3; a++) expect(v.spacing[a]).toBeCloseTo(SPACING[a]!, 6);
      expect(v.origin[2]).toBeCloseTo((-(SIZE[2] - 1) / 2) * SPACING[2], 6);
      expect(v.direction.normal).toEqual([0, 0, 1]);
      expect(maxAbsDiff(v.data, phantom.channels[m])).toBeLessThanOrEqual(INT16_ROUNDING);
      expect(v.seriesInstanceUID).toBe(study.series[m].seriesInstanceUID);
      expect(v.studyInstanceUID).toBe(study.studyInstanceUID);
      expect(v.frameOfReferenceUID).toBe(study.frameOfReferenceUID);
      expect(v.sopInstanceUIDs).toHaveLength(SIZE[2]);
      expect(new Set(v.sopInstanceUIDs).size).toBe(SIZE[2]);
      expect(v.dicom).toMatchObject({ PatientName: 'DOE^JANE', PatientID: 'ID-42', PatientBirthDate: '19700101', AccessionNumber: 'ACC21' });
    }
  });

  it('orders slices by position, not by file name or InstanceNumber (shuffled files load identically)', async () => {
    const dir = path.join(tmp.dir, 'shuffled');
    await writePhantomStudy(phantom, dir, { shuffle: true });
    const names = (await fsp.readdir(path.join(dir, 'flair'))).sort();
    const v = await loadSeries(path.join(dir, 'flair'));
    expect(maxAbsDiff(v.data, phantom.channels.flair)).toBeLessThanOrEqual(INT16_ROUNDING);
    // The shuffle really did move slices: the first file name does not hold the lowest slice.
    const firstFile = await loadSeries([path.join(dir, 'flair', names[0]!)], { name: 'one' });
    expect(firstFile.origin[2]).not.toBeCloseTo(v.origin[2], 3);
  });

  it('reads implicit VR little endian and explicit VR big endian the same', async () => {
    for (const [label, ts] of [['implicit', TS.implicitLittle], ['big', TS.explicitBig]] as const) {
      const dir = path.join(tmp.dir, label);
      await writePhantomStudy(phantom, dir, { transferSyntaxUID: ts });
      const v = await loadSeries(path.join(dir, 't1c'));
      expect(maxAbsDiff(v.data, phantom.channels.t1c)).toBeLessThanOrEqual(INT16_ROUNDING);
    }
  });

  it('reads deflated explicit VR little endian', async () => {
    const dir = path.join(tmp.dir, 'deflate');
    await fsp.mkdir(dir);
    const ids = { series: newUid(), study: newUid(), frameOfReference: newUid() };
    for (let k = 0; k < 3; k++) {
      const file = writePart10(mrSlice({ ...ids, ipp: [0, 0, 3 * k], value: 7 * k }), { declaredTransferSyntaxUID: '1.2.840.10008.1.2.1.99' });
      // The data set after the file meta group is what deflate compresses.
      const metaEnd = 132 + 12 + file.readUInt32LE(140);
      await fsp.writeFile(path.join(dir, `${k}.dcm`), Buffer.concat([file.subarray(0, metaEnd), deflateRawSync(file.subarray(metaEnd))]));
    }
    const v = await loadSeries(dir);
    expect(v.dims).toEqual([8, 8, 3]);
    expect([v.data[0], v.data[64], v.data[128]]).toEqual([0, 7, 14]);
  });

  it('recovers an oblique geometry from ImageOrientationPatient/ImagePositionPatient', async () => {
    const c = Math.cos(0.3);
    const s = Math.sin(0.3);
    const vol: Volume = {
      dims: [16, 12, 6],
      spacing: [1.5, 1.25, 3],
      origin: [10, -20, 30],
      direction: { row: [c, s, 0], col: [0, 0, -1], normal: [-s, c, 0] },
      data: Float32Array.from({ length: 16 * 12 * 6 }, (_, i) => (i % 97) * 3),
      frameOfReferenceUID: newUid(),
    };
    // normal must equal row x col for the loader's convention.
    const study: StudyIdentity = { studyInstanceUID: newUid(), frameOfReferenceUID: vol.frameOfReferenceUID, date: '20240101', time: '120000', accession: 'A', patient: { name: '', id: '', birthDate: '', sex: '' } };
    const dir = path.join(tmp.dir, 'oblique');
    await writeMrSeries(vol, dir, { modality: 't2', seriesNumber: 9, study, transferSyntaxUID: TS.explicitLittle });
    const v = await loadSeries(dir);
    expect(v.dims).toEqual(vol.dims);
    for (let a = 0; a < 3; a++) {
      expect(v.spacing[a]).toBeCloseTo(vol.spacing[a]!, 5);
      expect(v.direction.normal[a]).toBeCloseTo(vol.direction.normal[a]!, 5);
    }
    const p = indexToPatient(v, 15, 11, 5);
    const q = indexToPatient(vol, 15, 11, 5);
    for (let a = 0; a < 3; a++) expect(p[a]).toBeCloseTo(q[a]!, 3);
    expect(maxAbsDiff(v.data, vol.data)).toBeLessThanOrEqual(INT16_ROUNDING);
  });

  describe('bad input: errors name the series, the problem and the file', () => {
    it('missing slice', async () => {
      const dir = path.join(tmp.dir, 'missing');
      await writePhantomStudy(phantom, dir, { missingSlice: { modality: 't2', index: 10 } });
      await expect(loadSeries(path.join(dir, 't2'))).rejects.toThrow(/series .*t2: missing slice: 1 slice\(s\) absent .*\(file IM\d+\.dcm\)/);
      // The other series are intact.
      await expect(loadSeries(path.join(dir, 't1'))).resolves.toBeDefined();
    });

    it('mixed series in one folder', async () => {
      const dir = path.join(tmp.dir, 'mixed');
      await writePhantomStudy(phantom, dir);
      await fsp.copyFile(path.join(dir, 't1', 'IM0003.dcm'), path.join(dir, 'flair', 'zz-from-t1.dcm'));
      await expect(loadSeries(path.join(dir, 'flair'))).rejects.toThrow(/series .*flair: mixed series: .*2 different SeriesInstanceUIDs.*zz-from-t1\.dcm/);
    });

    it('truncated file', async () => {
      const dir = path.join(tmp.dir, 'truncated');
      await writePhantomStudy(phantom, dir);
      const f = path.join(dir, 'flair', 'IM0007.dcm');
      const bytes = await fsp.readFile(f);
      for (const keep of [bytes.length - 100, 700, 140]) {
        await fsp.writeFile(f, bytes.subarray(0, keep));
        await expect(loadSeries(path.join(dir, 'flair'))).rejects.toThrow(/series .*flair: IM0007\.dcm: (truncated pixel data|not a readable DICOM file|not an image)/);
      }
    });

    it('a file that is not DICOM at all', async () => {
      const dir = path.join(tmp.dir, 'notdicom');
      await writePhantomStudy(phantom, dir);
      await fsp.writeFile(path.join(dir, 't1', 'notes.txt'), 'hello, this is not an image');
      await expect(loadSeries(path.join(dir, 't1'))).rejects.toThrow(/series .*t1: notes\.txt: not a readable DICOM file \(no "DICM" prefix/);
    });

    it('non-image DICOM', async () => {
      const dir = path.join(tmp.dir, 'nonimage');
      await fsp.mkdir(dir);
      const sr = [el(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.88.11'), el(0x00080018, 'UI', newUid()), el(0x00080060, 'CS', 'SR')];
      await fsp.writeFile(path.join(dir, 'report.dcm'), writePart10(sr));
      await expect(loadSeries(dir, { name: 'T1 series' })).rejects.toThrow('series T1 series: report.dcm: not an image: no PixelData (SOP class 1.2.840.10008.5.1.4.1.1.88.11)');
    });

    it('an aborted load stops with the abort reason', async () => {
      const dir = path.join(tmp.dir, 'abort');
      await writePhantomStudy(phantom, dir);
      const ac = new AbortController();
      ac.abort(new Error('job cancelled'));
      await expect(loadSeries(path.join(dir, 'flair'), { signal: ac.signal })).rejects.toThrow('job cancelled');
    });

    it('compressed transfer syntax', async () => {
      const dir = path.join(tmp.dir, 'jpeg');
      await fsp.mkdir(dir);
      const ds = mrSlice({ series: newUid(), study: newUid(), frameOfReference: newUid(), ipp: [0, 0, 0] });
      await fsp.writeFile(path.join(dir, 'a.dcm'), writePart10(ds, { declaredTransferSyntaxUID: '1.2.840.10008.1.2.4.70' }));
      await expect(loadSeries(dir)).rejects.toThrow(/series .*jpeg: a\.dcm: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.70 \(JPEG lossless SV1\) is not supported/);
    });

    it('uneven spacing, duplicate positions, inconsistent geometry, empty folder', async () => {
      const write = async (name: string, slices: Parameters<typeof mrSlice>[0][]): Promise<string> => {
        const dir = path.join(tmp.dir, name);
        await fsp.mkdir(dir);
        await Promise.all(slices.map((s, i) => fsp.writeFile(path.join(dir, `s${i}.dcm`), writePart10(mrSlice(s)))));
        return dir;
      };
      const ids = { series: newUid(), study: newUid(), frameOfReference: newUid() };
      const at = (z: number, extra: Partial<Parameters<typeof mrSlice>[0]> = {}) => ({ ...ids, ipp: [0, 0, z] as Vec3, ...extra });
      await expect(loadSeries(await write('uneven', [at(0), at(2), at(4), at(7), at(9), at(11)]))).rejects.toThrow(/uneven slice spacing: gap of 3\.000 mm/);
      await expect(loadSeries(await write('dup', [at(0), at(2), at(2), at(4)]))).rejects.toThrow(/two slices at the same position/);
      await expect(loadSeries(await write('orient', [at(0), at(2), at(4, { iop: [1, 0, 0, 0, 0.8, 0.6] })]))).rejects.toThrow(/inconsistent ImageOrientationPatient.*\(file s2\.dcm\)/);
      await expect(loadSeries(await write('size', [at(0), at(2, { rows: 10 })]))).rejects.toThrow(/inconsistent Rows.*\(file s1\.dcm\)/);
      await expect(loadSeries(await write('pxsp', [at(0), at(2, { spacing: [1, 1.1] })]))).rejects.toThrow(/inconsistent PixelSpacing/);
      await expect(loadSeries(await write('tilt', [at(0), at(2, { ipp: [0, 1, 2] }), at(4, { ipp: [0, 2, 4] })]))).rejects.toThrow(/not stacked along the slice normal/);
      await expect(loadSeries(await write('empty', []))).rejects.toThrow(/series .*empty: no DICOM files found/);
      await expect(loadSeries(path.join(tmp.dir, 'does-not-exist'))).rejects.toThrow(/series .*does-not-exist: cannot read the folder/);
    });
  });
});

describe('loadSeries: enhanced (multi-frame) MR', () => {
  const tmp = tempDir('enhanced');
  afterAll(() => tmp.cleanup());

  it('stacks frames by their PlanePosition, applying per-frame rescale, and keeps frame numbers', async () => {
    const phantom = synthesizePhantom({ seed: 4, size: [32, 28, 12], spacing: [3, 3, 4] });
    const [nx, ny, nz] = phantom.size;
    const src = phantom.channels.t2;
    // Frames written in a scrambled order, each with its own rescale.
    const order = Array.from({ length: nz }, (_, k) => (k * 5) % nz);
    const pixels = new Int16Array(nx * ny * nz);
    const perFrame = order.map((k, f) => {
      const slope = 0.5 + 0.25 * (f % 3);
      for (let q = 0; q < nx * ny; q++) pixels[f * nx * ny + q] = Math.round(src[k * nx * ny + q]! / slope);
      return [
        el(0x00209113, 'SQ', [[el(0x00200032, 'DS', [-40, -35, -20 + 4 * k])]]),
        el(0x00289145, 'SQ', [[el(0x00281052, 'DS', 0), el(0x00281053, 'DS', slope), el(0x00281054, 'LO', 'US')]]),
      ];
    });
    const file = writePart10([
      el(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.4.1'),
      el(0x00080018, 'UI', newUid()),
      el(0x0020000d, 'UI', newUid()),
      el(0x0020000e, 'UI', newUid()),
      el(0x00200052, 'UI', newUid()),
      el(0x00280002, 'US', 1),
      el(0x00280004, 'CS', 'MONOCHROME2'),
      el(0x00280008, 'IS', nz),
      el(0x00280010, 'US', ny),
      el(0x00280011, 'US', nx),
      el(0x00280100, 'US', 16),
      el(0x00280101, 'US', 16),
      el(0x00280102, 'US', 15),
      el(0x00280103, 'US', 1),
      el(0x52009229, 'SQ', [[
        el(0x00209116, 'SQ', [[el(0x00200037, 'DS', [1, 0, 0, 0, 1, 0])]]),
        el(0x00289110, 'SQ', [[el(0x00280030, 'DS', [3, 3]), el(0x00180050, 'DS', 4)]]),
      ]]),
      el(0x52009230, 'SQ', perFrame),
      el(0x7fe00010, 'OW', new Uint8Array(pixels.buffer)),
    ]);
    const dir = path.join(tmp.dir, 'mf');
    await fsp.mkdir(dir);
    await fsp.writeFile(path.join(dir, 'enhanced.dcm'), file);
    const v = await loadSeries(dir);
    expect(v.dims).toEqual([nx, ny, nz]);
    expect(v.spacing).toEqual([3, 3, 4]);
    expect(v.origin).toEqual([-40, -35, -20]);
    expect(maxAbsDiff(v.data, src)).toBeLessThanOrEqual(0.5 + 1e-4);
    expect(v.frameNumbers).toEqual(Array.from({ length: nz }, (_, k) => order.indexOf(k) + 1));
    expect(new Set(v.sopInstanceUIDs).size).toBe(1);
  });
});
