/** @jest-environment ./test/model/ort-environment.cjs */
import { describe, expect, it } from '@jest/globals';
import path from 'node:path';
import ort from 'onnxruntime-node';
import {
  gaussianImportance,
  slidingWindowInference,
  windowStarts,
  type WindowPredictor,
} from '../../lab-agent/src/imaging/inference/sliding-window.js';
import { onnxWindowPredictor } from '../../lab-agent/src/imaging/inference/onnx-predictor.js';
import type { Vec3 } from '../../lab-agent/src/imaging/volume.js';
import { FIXTURES, randomFloats } from './helpers.js';

async function predictorFor(file: string, axisOrder: 'xyz' | 'zyx') {
  const session = await ort.InferenceSession.create(path.join(FIXTURES, file));
  return onnxWindowPredictor(session, { inputName: 'input', outputName: 'output', axisOrder });
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('windowStarts', () => {
  it('covers the axis with the MONAI interval and ends flush with the edge', () => {
    expect(windowStarts(20, 8, 0.5)).toEqual([0, 4, 8, 12]);
    expect(windowStarts(21, 8, 0.5)).toEqual([0, 4, 8, 12, 13]);
    expect(windowStarts(8, 8, 0.5)).toEqual([0]);
    expect(windowStarts(5, 8, 0.5)).toEqual([0]);
    expect(windowStarts(10, 8, 0)).toEqual([0, 2]);
  });
});

describe('gaussianImportance', () => {
  it('peaks at 1 in the centre, is symmetric, and has sigma = roi/8', () => {
    const roi: Vec3 = [9, 17, 33];
    const g = gaussianImportance(roi);
    const at = (x: number, y: number, z: number) => g[x + roi[0] * (y + roi[1] * z)]!;
    expect(at(4, 8, 16)).toBeCloseTo(1, 6);
    expect(at(0, 8, 16)).toBeCloseTo(at(8, 8, 16), 6);
    expect(at(4, 3, 16)).toBeCloseTo(at(4, 13, 16), 6);
    // one sigma (33/8 = 4.125 voxels) from the centre along z
    expect(at(4, 8, 16)).toBeGreaterThan(at(4, 8, 20));
    const sigma = 33 / 8;
    expect(at(4, 8, 16 + 4)).toBeCloseTo(Math.exp(-(4 * 4) / (2 * sigma * sigma)), 5);
    expect(Math.min(...g)).toBeGreaterThan(0);
  });
});

describe('slidingWindowInference with an identity ONNX model', () => {
  const cases: { dims: Vec3; roi: Vec3; overlap: number; order: 'xyz' | 'zyx' }[] = [
    { dims: [20, 17, 11], roi: [8, 8, 8], overlap: 0.5, order: 'xyz' },
    { dims: [20, 17, 11], roi: [8, 8, 8], overlap: 0.25, order: 'zyx' },
    // smaller than the roi along two axes: padded windows
    { dims: [13, 5, 7], roi: [8, 8, 8], overlap: 0.5, order: 'xyz' },
    { dims: [3, 4, 2], roi: [8, 8, 8], overlap: 0, order: 'zyx' },
  ];
  for (const c of cases) {
    it(`returns the input everywhere, borders included (${c.dims.join('x')}, roi ${c.roi.join('x')}, overlap ${c.overlap}, ${c.order})`, async () => {
      const predict = await predictorFor('identity2.onnx', c.order);
      const n = c.dims[0] * c.dims[1] * c.dims[2];
      const data = randomFloats(2 * n, 7);
      const out = await slidingWindowInference({ data, channels: 2, dims: c.dims }, predict, { roiSize: c.roi, overlap: c.overlap });
      expect(out.channels).toBe(2);
      expect(out.dims).toEqual(c.dims);
      expect(maxAbsDiff(out.data, data)).toBeLessThan(1e-5);
    });
  }

  it('maps channels as the model does (1x1x1 conv 2 -> 3 channels)', async () => {
    const predict = await predictorFor('mix2to3.onnx', 'xyz');
    const dims: Vec3 = [12, 9, 10];
    const n = 12 * 9 * 10;
    const data = randomFloats(2 * n, 3);
    const out = await slidingWindowInference({ data, channels: 2, dims }, predict, { roiSize: [8, 8, 8], overlap: 0.5 });
    const expected = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) {
      const a = data[i]!;
      const b = data[n + i]!;
      expected[i] = a;
      expected[n + i] = 2 * b + 1;
      expected[2 * n + i] = a - b - 0.5;
    }
    expect(out.channels).toBe(3);
    expect(maxAbsDiff(out.data, expected)).toBeLessThan(1e-5);
  });
});

describe('onnxWindowPredictor axis order', () => {
  // grad_last.onnx takes a central difference along the LAST tensor axis. A ramp in x gives 1 inside
  // when x is that axis ('zyx' layout) and 0 when z is ('xyz').
  const roi: Vec3 = [8, 8, 8];
  const ramp = new Float32Array(512);
  for (let z = 0; z < 8; z++) for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) ramp[x + 8 * (y + 8 * z)] = x;
  it('zyx puts x last', async () => {
    const p = await predictorFor('grad_last.onnx', 'zyx');
    const r = await p(ramp, 1, roi);
    expect(r.data[3 + 8 * (2 + 8 * 5)]).toBeCloseTo(1, 6);
  });
  it('xyz puts z last', async () => {
    const p = await predictorFor('grad_last.onnx', 'xyz');
    const r = await p(ramp, 1, roi);
    expect(r.data[3 + 8 * (2 + 8 * 5)]).toBeCloseTo(0, 6);
    // at z = 0 the zero padding of the conv shows: 0.5 * (x - 0)
    expect(r.data[3 + 8 * (2 + 8 * 0)]).toBeCloseTo(1.5, 6);
  });
});

describe('slidingWindowInference blending', () => {
  it('gives each voxel the Gaussian-weighted mean of the windows covering it', async () => {
    // Each window predicts a constant: its own index. A brute-force reference then knows exactly what
    // each voxel must be.
    const dims: Vec3 = [14, 9, 6];
    const roi: Vec3 = [6, 6, 4];
    const overlap = 0.5;
    const seen: Vec3[] = [];
    let count = 0;
    const predict: WindowPredictor = async (_w, _c, r) => {
      const data = new Float32Array(r[0] * r[1] * r[2]).fill(count++);
      return { data, channels: 1 };
    };
    const out = await slidingWindowInference({ data: new Float32Array(14 * 9 * 6), channels: 1, dims }, predict, { roiSize: roi, overlap });
    const sx = windowStarts(14, 6, overlap);
    const sy = windowStarts(9, 6, overlap);
    const sz = windowStarts(6, 4, overlap);
    for (const z of sz) for (const y of sy) for (const x of sx) seen.push([x, y, z]);
    expect(count).toBe(seen.length);
    const g = gaussianImportance(roi);
    for (let z = 0; z < 6; z++)
      for (let y = 0; y < 9; y++)
        for (let x = 0; x < 14; x++) {
          let num = 0;
          let den = 0;
          seen.forEach(([x0, y0, z0], idx) => {
            if (x < x0 || x >= x0 + 6 || y < y0 || y >= y0 + 6 || z < z0 || z >= z0 + 4) return;
            const w = g[x - x0 + 6 * (y - y0 + 6 * (z - z0))]!;
            num += w * idx;
            den += w;
          });
          expect(out.data[x + 14 * (y + 9 * z)]).toBeCloseTo(num / den, 4);
        }
  });

  it('reports progress per window and stops between windows when aborted', async () => {
    const ctrl = new AbortController();
    const progress: [number, number][] = [];
    let calls = 0;
    const predict: WindowPredictor = async (w, c) => {
      calls++;
      return { data: w.slice(), channels: c };
    };
    const run = slidingWindowInference({ data: new Float32Array(20 * 20 * 20), channels: 1, dims: [20, 20, 20] }, predict, {
      roiSize: [8, 8, 8],
      overlap: 0.5,
      signal: ctrl.signal,
      onProgress: (d, t) => {
        progress.push([d, t]);
        if (d === 2) ctrl.abort(new Error('job cancelled'));
      },
    });
    await expect(run).rejects.toThrow('job cancelled');
    expect(calls).toBe(2);
    expect(progress).toEqual([
      [1, 64],
      [2, 64],
    ]);
  });

  it('rejects a predictor that returns the wrong number of values', async () => {
    const predict: WindowPredictor = async () => ({ data: new Float32Array(5), channels: 1 });
    await expect(
      slidingWindowInference({ data: new Float32Array(512), channels: 1, dims: [8, 8, 8] }, predict, { roiSize: [8, 8, 8], overlap: 0 }),
    ).rejects.toThrow('model returned 5 values for a window of 8x8x8 with 1 channels');
  });
});
