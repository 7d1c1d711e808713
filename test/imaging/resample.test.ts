import { describe, it, expect } from '@jest/globals';
import { resampleToReference } from '../../lab-agent/src/imaging/resample.js';
import { AXIAL, indexToPatient, patientToIndex, type Vec3, type Volume } from '../../lab-agent/src/imaging/volume.js';

// Trilinear interpolation reproduces affine functions exactly: a field linear in patient coordinates
// makes every resampled voxel checkable.
const f = (p: Vec3): number => 3 * p[0] - 2 * p[1] + 0.5 * p[2] + 100;

function volumeOf(grid: Omit<Volume, 'data' | 'frameOfReferenceUID'>, fn: (p: Vec3) => number, frameOfReferenceUID = '1.2.3'): Volume {
  const [nx, ny, nz] = grid.dims;
  const data = new Float32Array(nx * ny * nz);
  let q = 0;
  for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) data[q++] = fn(indexToPatient(grid, i, j, k));
  return { ...grid, data, frameOfReferenceUID };
}

const moving = volumeOf({ dims: [20, 18, 12], spacing: [2, 2, 3], origin: [-19, -17, -16.5], direction: AXIAL }, f);

function checkAgainstField(out: Volume): { inside: number; outside: number } {
  let inside = 0;
  let outside = 0;
  const [nx, ny, nz] = out.dims;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const p = indexToPatient(out, i, j, k);
        const m = patientToIndex(moving, p);
        const v = out.data[i + nx * (j + ny * k)]!;
        const within = m.every((x, a) => x >= 0 && x <= moving.dims[a]! - 1);
        const beyond = m.some((x, a) => x < -0.5 || x > moving.dims[a]! - 0.5);
        if (within) {
          expect(Math.abs(v - f(p))).toBeLessThan(1e-3 * Math.max(1, Math.abs(f(p))));
          inside++;
        } else if (beyond) {
          expect(v).toBe(0);
          outside++;
        }
      }
    }
  }
  return { inside, outside };
}

describe('resampleToReference', () => {
  it('returns the moving volume itself when the grids match', () => {
    const ref = { ...moving, data: new Float32Array(0) };
    expect(resampleToReference(moving, ref)).toBe(moving);
  });

  it('resamples onto a translated, respaced grid in patient coordinates', () => {
    const ref = volumeOf({ dims: [25, 21, 20], spacing: [1.5, 1.7, 2], origin: [-20.3, -14.1, -21.7], direction: AXIAL }, () => 0);
    const out = resampleToReference(moving, ref);
    expect(out.dims).toEqual(ref.dims);
    expect(out.origin).toEqual(ref.origin);
    const n = checkAgainstField(out);
    expect(n.inside).toBeGreaterThan(5000);
    expect(n.outside).toBeGreaterThan(100);
  });

  it('resamples onto an oblique grid', () => {
    const c = Math.cos(0.4), s = Math.sin(0.4);
    const ref = volumeOf({ dims: [16, 16, 10], spacing: [1.8, 1.8, 2.2], origin: [-12, -10, -9], direction: { row: [c, s, 0], col: [-s, c, 0], normal: [0, 0, 1] } }, () => 0);
    const n = checkAgainstField(resampleToReference(moving, ref));
    expect(n.inside).toBeGreaterThan(1000);
  });

  it('refuses a different frame of reference unless allowed', () => {
    const ref = volumeOf({ dims: [5, 5, 5], spacing: [1, 1, 1], origin: [0, 0, 0], direction: AXIAL }, () => 0, '9.9.9');
    expect(() => resampleToReference({ ...moving, source: 't1' }, { ...ref, source: 'flair' })).toThrow(
      /series t1 has FrameOfReferenceUID 1\.2\.3, reference flair has 9\.9\.9/,
    );
    const out = resampleToReference(moving, ref, { allowDifferentFrameOfReference: true });
    expect(out.data[0]).toBeCloseTo(f([0, 0, 0]), 3);
  });
});
