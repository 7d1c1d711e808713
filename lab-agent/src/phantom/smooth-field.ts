import type { Rng } from './random.js';

/**
 * A smooth random 3D field (a sum of plane waves with random directions and phases), roughly unit
 * variance. Evaluated a row at a time with the angle-addition identity so that a full volume costs a few
 * multiply-adds per voxel and wave instead of a sin() call.
 */
export class SmoothField {
  private readonly kx: Float64Array;
  private readonly ky: Float64Array;
  private readonly kz: Float64Array;
  private readonly sinA: Float64Array[];
  private readonly cosA: Float64Array[];
  private readonly gain: number;

  /** `xs` are the x coordinates (mm) of the columns; wavelengths are drawn in [minWavelength, maxWavelength] mm. */
  constructor(rng: Rng, xs: Float64Array, waves: number, minWavelength: number, maxWavelength: number) {
    this.kx = new Float64Array(waves);
    this.ky = new Float64Array(waves);
    this.kz = new Float64Array(waves);
    this.sinA = [];
    this.cosA = [];
    this.gain = Math.sqrt(2 / waves);
    for (let w = 0; w < waves; w++) {
      const k = (2 * Math.PI) / rng.uniform(minWavelength, maxWavelength);
      // Uniform direction on the sphere.
      const z = rng.uniform(-1, 1);
      const t = rng.uniform(0, 2 * Math.PI);
      const r = Math.sqrt(1 - z * z);
      this.kx[w] = k * r * Math.cos(t);
      this.ky[w] = k * r * Math.sin(t);
      this.kz[w] = k * z;
      const phase = rng.uniform(0, 2 * Math.PI);
      const s = new Float64Array(xs.length);
      const c = new Float64Array(xs.length);
      for (let i = 0; i < xs.length; i++) {
        const a = this.kx[w]! * xs[i]! + phase;
        s[i] = Math.sin(a);
        c[i] = Math.cos(a);
      }
      this.sinA.push(s);
      this.cosA.push(c);
    }
  }

  /** Writes the field along the row at (y, z) mm into `out` (length = number of columns). */
  row(y: number, z: number, out: Float64Array): void {
    out.fill(0);
    const n = out.length;
    for (let w = 0; w < this.kx.length; w++) {
      const b = this.ky[w]! * y + this.kz[w]! * z;
      const sb = Math.sin(b) * this.gain;
      const cb = Math.cos(b) * this.gain;
      const sa = this.sinA[w]!;
      const ca = this.cosA[w]!;
      for (let i = 0; i < n; i++) out[i] = out[i]! + sa[i]! * cb + ca[i]! * sb;
    }
  }
}
