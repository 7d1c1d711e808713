import { describe, expect, it } from '@jest/globals';
import { normaliseInPlace, zscoreNonzero } from '../../lab-agent/src/imaging/normalise.js';
import { labelMap, measure } from '../../lab-agent/src/imaging/postprocess.js';
import { parseManifest } from '../../lab-agent/src/imaging/model/manifest.js';
import { fixtureManifest } from './helpers.js';

describe('zscore over non-zero voxels', () => {
  it('uses only non-zero voxels for the statistics and leaves zeros at 0', () => {
    const ch = new Float32Array([0, 2, 4, 0, 6, 0]);
    const s = zscoreNonzero(ch);
    expect(s.mean).toBeCloseTo(4, 10);
    expect(s.std).toBeCloseTo(Math.sqrt(8 / 3), 10); // population std of 2, 4, 6
    expect(s.nonzero).toBe(3);
    expect(Array.from(ch)).toEqual([0, expect.closeTo(-2 / Math.sqrt(8 / 3), 5), 0, 0, expect.closeTo(2 / Math.sqrt(8 / 3), 5), 0]);
  });

  it('normalises each channel with its own statistics', () => {
    const data = new Float32Array([1, 2, 3, 0, 100, 300, 0, 200]);
    const stats = normaliseInPlace(data, 2, 'zscore_nonzero');
    expect(stats.map((s) => s.mean)).toEqual([2, 200]);
    expect(data[0]).toBeCloseTo(-Math.sqrt(1.5), 5);
    expect(data[3]).toBe(0);
    expect(data[5]).toBeCloseTo(Math.sqrt(1.5), 5);
    expect(data[6]).toBe(0);
  });

  it('divides a constant channel by 1 (MONAI) and leaves an all-zero channel alone', () => {
    const data = new Float32Array([5, 5, 0, 0, 0, 0]);
    normaliseInPlace(data, 2, 'zscore_nonzero');
    expect(Array.from(data)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it("'none' leaves the data unchanged; bad shapes are refused", () => {
    const data = new Float32Array([3, 4]);
    normaliseInPlace(data, 1, 'none');
    expect(Array.from(data)).toEqual([3, 4]);
    expect(() => normaliseInPlace(new Float32Array(5), 2, 'zscore_nonzero')).toThrow('5 values do not split into 2 channels');
  });
});

describe('labelMap', () => {
  const sig = parseManifest(fixtureManifest()).output;
  // 6 voxels, channels [TC, WT, ET] as logits
  const TC = [-5, 3, 3, -5, -5, 0.1];
  const WT = [-5, 3, 3, 3, -5, 0.1];
  const ET = [-5, -5, 3, -5, 3, -0.1];
  const vol = { data: new Float32Array([...TC, ...WT, ...ET]), channels: 3, dims: [6, 1, 1] as [number, number, number] };

  it('applies the MONAI BraTS rule: ET, else TC -> core, else WT -> oedema', () => {
    expect(Array.from(labelMap(vol, sig))).toEqual([0, 1, 3, 2, 3, 1]);
  });

  it('thresholds probabilities when the model already applied the sigmoid', () => {
    const probs = { ...vol, data: vol.data.map((x) => 1 / (1 + Math.exp(-x))) };
    expect(Array.from(labelMap(probs, { ...sig, activation: 'probabilities' } as typeof sig))).toEqual([0, 1, 3, 2, 3, 1]);
    // a higher threshold drops the voxel whose probabilities are near 0.5
    expect(Array.from(labelMap(probs, { ...sig, activation: 'probabilities', threshold: 0.6 } as typeof sig))).toEqual([0, 1, 3, 2, 3, 0]);
  });

  it('maps the softmax argmax channel through channel_labels', () => {
    const conv = parseManifest(fixtureManifest({ output: { convention: 'softmax_labels', channel_labels: [0, 3, 1] } })).output;
    const data = new Float32Array([9, 0, 0, 1, /* ch1 */ 0, 9, 0, 1, /* ch2 */ 0, 0, 9, 2]);
    expect(Array.from(labelMap({ data, channels: 3, dims: [4, 1, 1] }, conv))).toEqual([0, 3, 1, 1]);
    expect(() => labelMap({ data: new Float32Array(8), channels: 2, dims: [4, 1, 1] }, conv)).toThrow('softmax_labels lists 3 channels, the model gave 2');
  });

  it('refuses a channel count that does not fit the convention', () => {
    expect(() => labelMap({ data: new Float32Array(4), channels: 2, dims: [2, 1, 1] }, sig)).toThrow('needs 3 output channels');
  });
});

describe('measure', () => {
  const defs = parseManifest(fixtureManifest()).labels;
  it('counts voxels per label, converts with the voxel volume and sums the whole tumour', () => {
    const labels = new Uint8Array(1000);
    labels.fill(1, 0, 10).fill(2, 10, 110).fill(3, 110, 130);
    const m = measure(labels, [2, 2, 2.5], defs); // 10 mm^3 = 0.01 mL per voxel
    expect(m).toEqual({
      tumor_detected: true,
      tumor_volume_voxels: 130,
      volumes_ml: { necrotic_core: 0.1, edema: 1, enhancing: 0.2 },
      whole_tumor_ml: 1.3,
      voxels: { necrotic_core: 10, edema: 100, enhancing: 20 },
    });
  });

  it('reports no tumour with every label at 0 mL', () => {
    const m = measure(new Uint8Array(27), [1, 1, 1], defs);
    expect(m.tumor_detected).toBe(false);
    expect(m.tumor_volume_voxels).toBe(0);
    expect(m.volumes_ml).toEqual({ necrotic_core: 0, edema: 0, enhancing: 0 });
    expect(m.whole_tumor_ml).toBe(0);
  });

  it('refuses a non-positive spacing', () => {
    expect(() => measure(new Uint8Array(1), [1, 0, 1], defs)).toThrow('voxel spacing must be positive');
  });
});
