/** @jest-environment ./test/model/ort-environment.cjs */
import { describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { modelGrid, segmentChannels, stackChannels, type StageContext } from '../../lab-agent/src/imaging/inference/segment.js';
import { loadModel } from '../../lab-agent/src/imaging/model/load-model.js';
import { AXIAL, type Vec3 } from '../../lab-agent/src/imaging/volume.js';
import { FIXTURES, fixtureManifest, writeManifest } from './helpers.js';

const grid = (dims: Vec3, spacing: Vec3) => ({ dims, spacing, origin: [10, -20, 5] as Vec3, direction: AXIAL, frameOfReferenceUID: '1.2.3' });

describe('modelGrid', () => {
  it('is undefined when there is no target spacing or the grid has it already', () => {
    expect(modelGrid(grid([10, 10, 10], [1, 1, 1]), undefined)).toBeUndefined();
    expect(modelGrid(grid([10, 10, 10], [1, 1, 1.005]), [1, 1, 1])).toBeUndefined();
  });
  it('covers the same field of view with the target voxel size', () => {
    const g = modelGrid(grid([10, 12, 7], [1, 1, 3]), [2, 2, 1])!;
    expect(g.dims).toEqual([5, 6, 21]);
    expect(g.spacing).toEqual([2, 2, 1]);
    // first voxel face stays where it was: old face 10 - 0.5, new centre one new half-voxel inside
    expect(g.origin[0]).toBeCloseTo(10 - 0.5 + 1, 9);
    expect(g.origin[1]).toBeCloseTo(-20 - 0.5 + 1, 9);
    expect(g.origin[2]).toBeCloseTo(5 - 1.5 + 0.5, 9);
  });
});

describe('segmentChannels', () => {
  // identity3.onnx returns its 3 input channels: the "logits" are whatever we feed, so the label map is
  // known exactly. Channels: signed distances to three nested spheres (positive inside), i.e. [TC, WT, ET].
  const dims: Vec3 = [40, 40, 40];
  const n = 40 * 40 * 40;
  const sphere = (r: number) => {
    const a = new Float32Array(n);
    for (let z = 0; z < 40; z++) for (let y = 0; y < 40; y++) for (let x = 0; x < 40; x++) a[x + 40 * (y + 40 * z)] = r - Math.hypot(x - 19.5, y - 19.5, z - 19.5);
    return a;
  };
  const channels = { t1: sphere(8), t1c: sphere(14), flair: sphere(4) };
  const order = ['t1', 't1c', 'flair'] as const;
  const expected = new Uint8Array(n);
  for (let i = 0; i < n; i++) expected[i] = channels.flair[i]! > 0 ? 3 : channels.t1[i]! > 0 ? 1 : channels.t1c[i]! > 0 ? 2 : 0;

  async function run(over: Record<string, unknown>) {
    const model = await loadModel(
      await writeManifest(fixtureManifest({ onnx: path.join(FIXTURES, 'identity3.onnx'), channels: order, roi_size: [16, 16, 16], overlap: 0, ...over })),
    );
    let windows = 0;
    const counted = { manifest: model.manifest, predict: (w: Float32Array, c: number, r: Vec3) => (windows++, model.predict(w, c, r)) };
    const ctx: StageContext = { signal: new AbortController().signal, progress: () => {}, timings: {} };
    const seg = await segmentChannels(counted, stackChannels(channels, order, dims), grid(dims, [1, 1, 1]), ctx);
    await model.release();
    return { seg, windows, ctx };
  }

  it('on the native grid gives exactly the thresholded channels and the volumes in mL', async () => {
    const { seg, windows, ctx } = await run({});
    expect(windows).toBe(27);
    expect(Array.from(seg.labels)).toEqual(Array.from(expected));
    const count = (v: number) => expected.filter((x) => x === v).length;
    expect(seg.measurements.voxels).toEqual({ necrotic_core: count(1), edema: count(2), enhancing: count(3) });
    expect(seg.measurements.whole_tumor_ml).toBeCloseTo((count(1) + count(2) + count(3)) / 1000, 3);
    expect(Object.keys(ctx.timings)).toEqual(['normalise', 'infer', 'postprocess']);
  });

  it('with a target spacing runs the model on the coarser grid and returns labels on the input grid', async () => {
    const { seg, windows, ctx } = await run({ target_spacing_mm: [2, 2, 2] });
    expect(windows).toBe(8); // 20^3 voxels at 2 mm in 16^3 windows
    expect(seg.labels.length).toBe(n);
    let same = 0;
    for (let i = 0; i < n; i++) if (seg.labels[i] === expected[i]) same++;
    expect(same / n).toBeGreaterThan(0.98); // only boundary voxels may differ after two interpolations
    expect(seg.measurements.voxels.edema! / expected.filter((x) => x === 2).length).toBeCloseTo(1, 1);
    expect(Object.keys(ctx.timings)).toEqual(['model_resample', 'normalise', 'infer', 'postprocess']);
  });

  it('refuses input missing a modality the model needs', () => {
    expect(() => stackChannels({ t1: channels.t1 }, order, dims)).toThrow('the model needs a t1c series, none was given');
  });
});
