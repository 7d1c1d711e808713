import { describe, it, expect } from '@jest/globals';
import { synthesizePhantom, MODALITIES, LABEL, truthOf } from '../../lab-agent/src/phantom/synthesize.js';

const SIZE: [number, number, number] = [48, 48, 32];
const SPACING: [number, number, number] = [4, 4, 4];

function meanWhere(data: Float32Array, labels: Uint8Array, label: number): number {
  let s = 0;
  let n = 0;
  for (let p = 0; p < data.length; p++) if (labels[p] === label) ((s += data[p]!), n++);
  return s / n;
}

describe('synthesizePhantom', () => {
  it('is deterministic by seed and differs between seeds', () => {
    const a = synthesizePhantom({ seed: 7, size: SIZE, spacing: SPACING });
    const b = synthesizePhantom({ seed: 7, size: SIZE, spacing: SPACING });
    const c = synthesizePhantom({ seed: 8, size: SIZE, spacing: SPACING });
    expect(Buffer.from(a.labels).equals(Buffer.from(b.labels))).toBe(true);
    for (const m of MODALITIES) expect(Buffer.from(a.channels[m].buffer).equals(Buffer.from(b.channels[m].buffer))).toBe(true);
    expect(a.truth).toEqual(b.truth);
    expect(Buffer.from(a.labels).equals(Buffer.from(c.labels))).toBe(false);
  });

  it('has all three subregions with plausible volumes computed from voxel counts', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const p = synthesizePhantom({ seed, size: SIZE, spacing: SPACING });
      const { volumes_ml: v, whole_tumor_ml, voxels } = p.truth;
      expect(p.labels.length).toBe(SIZE[0] * SIZE[1] * SIZE[2]);
      for (const ml of [v.necrotic_core, v.edema, v.enhancing]) expect(ml).toBeGreaterThan(0.5);
      // A glioma with oedema: tens of mL, well under the ~1.2 L brain of this phantom.
      expect(whole_tumor_ml).toBeGreaterThan(5);
      expect(whole_tumor_ml).toBeLessThan(400);
      expect(whole_tumor_ml).toBeCloseTo(v.necrotic_core + v.edema + v.enhancing, 2);
      expect(voxels.whole_tumor * 0.064).toBeCloseTo(whole_tumor_ml, 2);
    }
  });

  it('gives the same anatomy in mm at a finer grid (volumes agree within sampling error)', () => {
    const coarse = synthesizePhantom({ seed: 11, size: [48, 48, 32], spacing: [4, 4, 4] });
    const fine = synthesizePhantom({ seed: 11, size: [96, 96, 64], spacing: [2, 2, 2] });
    expect(Math.abs(fine.truth.whole_tumor_ml - coarse.truth.whole_tumor_ml) / fine.truth.whole_tumor_ml).toBeLessThan(0.1);
  });

  it('has BraTS-like contrast per modality', () => {
    const p = synthesizePhantom({ seed: 3, size: SIZE, spacing: SPACING });
    const { t1, t1c, t2, flair } = p.channels;
    // White matter stands for "normal brain": label 0 voxels with high T1.
    const normal = new Uint8Array(p.labels.length).fill(9);
    for (let i = 0; i < p.labels.length; i++) if (p.labels[i] === 0 && t1[i]! > 750) normal[i] = 0;
    const wm = (d: Float32Array): number => meanWhere(d, normal, 0);
    expect(meanWhere(flair, p.labels, LABEL.edema)).toBeGreaterThan(1.5 * wm(flair));
    expect(meanWhere(t1c, p.labels, LABEL.enhancing)).toBeGreaterThan(1.3 * wm(t1c));
    expect(meanWhere(t2, p.labels, LABEL.edema)).toBeGreaterThan(1.5 * wm(t2));
    expect(meanWhere(t2, p.labels, LABEL.necrotic_core)).toBeGreaterThan(1.5 * wm(t2));
    expect(meanWhere(t1, p.labels, LABEL.necrotic_core)).toBeLessThan(0.6 * wm(t1));
    // Noise: background outside the head is exactly zero, tissue is not constant.
    expect(flair[0]).toBe(0);
    const e: number[] = [];
    for (let i = 0; i < p.labels.length && e.length < 50; i++) if (p.labels[i] === LABEL.edema) e.push(flair[i]!);
    expect(new Set(e.map((v) => Math.round(v))).size).toBeGreaterThan(10);
  });

  it('rejects bad sizes', () => {
    expect(() => synthesizePhantom({ seed: 1, size: [2, 48, 32] })).toThrow(/size/);
    expect(() => synthesizePhantom({ seed: 1, spacing: [0, 1, 1] })).toThrow(/spacing/);
  });

  it('truthOf counts voxels', () => {
    const t = truthOf(Uint8Array.from([0, 1, 1, 2, 3, 3, 3]), [10, 10, 10]);
    expect(t.volumes_ml).toEqual({ necrotic_core: 2, edema: 1, enhancing: 3 });
    expect(t.whole_tumor_ml).toBe(6);
  });
});
