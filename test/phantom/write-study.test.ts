import { describe, it, expect, afterAll } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fsp, readdirSync } from 'node:fs';
import path from 'node:path';
import { loadSeries } from '../../lab-agent/src/imaging/dicom/load-series.js';
import { resampleToReference } from '../../lab-agent/src/imaging/resample.js';
import { sameGrid } from '../../lab-agent/src/imaging/volume.js';
import { synthesizePhantom } from '../../lab-agent/src/phantom/synthesize.js';
import { writePhantomStudy, differingGrid } from '../../lab-agent/src/phantom/write-study.js';
import { phantomVolume } from '../../lab-agent/src/phantom/geometry.js';

function correlation(a: Float32Array, b: Float32Array): number {
  let ma = 0, mb = 0;
  for (let i = 0; i < a.length; i++) ((ma += a[i]!), (mb += b[i]!));
  ma /= a.length;
  mb /= b.length;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! - ma, y = b[i]! - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return sab / Math.sqrt(saa * sbb);
}
import { hasCommand, tempDir } from '../imaging/helpers.js';

const hasDciodvfy = hasCommand('dciodvfy', []);
if (!hasDciodvfy) console.warn('SKIPPED: dciodvfy not installed (Debian dicom3tools): phantom MR IOD validation is skipped');
const maybeDciodvfy = hasDciodvfy ? it : it.skip;

describe('writePhantomStudy', () => {
  const tmp = tempDir('study');
  afterAll(() => tmp.cleanup());
  const phantom = synthesizePhantom({ seed: 13, size: [40, 40, 20], spacing: [4, 4, 6] });

  it('--geometry-differ: T1/T1c/T2 on another grid in the same frame of reference, resampling back matches', async () => {
    const dir = path.join(tmp.dir, 'differ');
    await writePhantomStudy(phantom, dir, { geometryDiffer: true });
    const flair = await loadSeries(path.join(dir, 'flair'));
    const t1 = await loadSeries(path.join(dir, 't1'));
    expect(sameGrid(flair, t1)).toBe(false);
    expect(t1.spacing[2]).toBeCloseTo(9, 6);
    expect(t1.frameOfReferenceUID).toBe(flair.frameOfReferenceUID);
    const back = resampleToReference(t1, flair);
    // The same two resamplings done in memory: equal up to int16 storage, so the written geometry is right.
    const original = phantomVolume(phantom, 't1', flair.frameOfReferenceUID);
    const expected = resampleToReference(resampleToReference(original, { ...differingGrid(phantom.size, phantom.spacing), frameOfReferenceUID: flair.frameOfReferenceUID }), original);
    let maxErr = 0;
    for (let i = 0; i < back.data.length; i++) maxErr = Math.max(maxErr, Math.abs(back.data[i]! - expected.data[i]!));
    expect(maxErr).toBeLessThan(0.13);
    // And the round trip still looks like the phantom (blurred): strong correlation.
    expect(correlation(back.data, phantom.channels.t1)).toBeGreaterThan(0.85);
  });

  maybeDciodvfy('writes MR images that dciodvfy accepts without errors', async () => {
    const dir = path.join(tmp.dir, 'valid');
    const study = await writePhantomStudy(phantom, dir, { patient: { name: 'DOE^JANE', id: 'X1', birthDate: '19900101' } });
    const r = spawnSync('dciodvfy', [study.series.flair.files[3]!], { encoding: 'utf8' });
    const lines = `${r.stdout}\n${r.stderr}`.split('\n');
    expect(lines.filter((l) => l.startsWith('Error'))).toEqual([]);
  });

  it('the CLI writes the layout and truth.json, honours --missing-slice/--shuffle/--implicit-vr, and rejects bad options', async () => {
    const out = path.join(tmp.dir, 'cli');
    const tsx = path.resolve('node_modules/.bin/tsx');
    const stdout = execFileSync(tsx, ['lab-agent/src/cli/phantom.ts', '--out', out, '--seed', '13', '--size', '40,40,20', '--spacing', '4,4,6',
      '--missing-slice', 't1c:5', '--shuffle', '--implicit-vr', '--patient-name', 'SECRET^NAME', '--patient-id', 'SECRET-ID', '--birth-date', '19700101'], { encoding: 'utf8', timeout: 60000 });
    expect(stdout).toMatch(/wrote 79 DICOM files/);
    expect(stdout).not.toMatch(/SECRET/); // patient identity is never printed
    const truth = JSON.parse(await fsp.readFile(path.join(out, 'truth.json'), 'utf8'));
    expect(truth).toMatchObject({ seed: 13, size: [40, 40, 20], spacing: [4, 4, 6], volumes_ml: phantom.truth.volumes_ml, whole_tumor_ml: phantom.truth.whole_tumor_ml });
    expect(readdirSync(path.join(out, 't1c'))).toHaveLength(19);
    await expect(loadSeries(path.join(out, 't1c'))).rejects.toThrow(/missing slice/);
    const flair = await loadSeries(path.join(out, 'flair'));
    expect(flair.dicom?.PatientName).toBe('SECRET^NAME');
    const labels = new Uint8Array(await fsp.readFile(path.join(out, truth.labels_file)));
    expect(Buffer.from(labels).equals(Buffer.from(phantom.labels))).toBe(true);

    const again = spawnSync(tsx, ['lab-agent/src/cli/phantom.ts', '--out', out, '--size', '8,8,4'], { encoding: 'utf8', timeout: 60000 });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/output folder .*t1 is not empty/);
    const bad = spawnSync(tsx, ['lab-agent/src/cli/phantom.ts', '--out', out, '--size', '40,40'], { encoding: 'utf8', timeout: 60000 });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/three positive integers/);
    const badSlice = spawnSync(tsx, ['lab-agent/src/cli/phantom.ts', '--out', path.join(tmp.dir, 'cli2'), '--size', '8,8,4', '--missing-slice', 'flair:9'], { encoding: 'utf8', timeout: 60000 });
    expect(badSlice.status).toBe(1);
    expect(badSlice.stderr).toMatch(/missing slice index 9 is outside flair's 0\.\.3/);
  });
});
