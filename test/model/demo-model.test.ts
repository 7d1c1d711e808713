/** @jest-environment ./test/model/ort-environment.cjs */
// The committed demo model, run through the agent's own TypeScript path (stack, normalise, sliding window,
// label map, measure) on phantoms whose seeds were never used in training (1..40) or validation (101..105).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DEMO_MODEL_DIR, loadModel, type SegmentationModel } from '../../lab-agent/src/imaging/model/load-model.js';
import { segmentChannels, stackChannels, type StageContext } from '../../lab-agent/src/imaging/inference/segment.js';
import { synthesizePhantom } from '../../lab-agent/src/phantom/synthesize.js';
import { AXIAL, type Vec3 } from '../../lab-agent/src/imaging/volume.js';

let model: SegmentationModel;
beforeAll(async () => {
  model = await loadModel(DEMO_MODEL_DIR, { intraOpThreads: 2 });
});
afterAll(async () => {
  await model?.release();
});

function dice(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! > 0;
    const y = b[i]! > 0;
    if (x) sa++;
    if (y) sb++;
    if (x && y) inter++;
  }
  return sa + sb === 0 ? 1 : (2 * inter) / (sa + sb);
}

describe('demo model on fresh phantoms', () => {
  const cases: { seed: number; size?: Vec3; spacing?: Vec3 }[] = [
    { seed: 1001 }, // the phantom's default geometry: 96x96x64 at 2 mm, one window
    { seed: 1002, size: [128, 128, 85], spacing: [1.5, 1.5, 1.5] }, // several blended windows
  ];
  for (const c of cases) {
    it(`seed ${c.seed}: whole-tumour Dice >= 0.85 and volume within 10% of truth`, async () => {
      const p = synthesizePhantom(c);
      const input = stackChannels(p.channels, model.manifest.channels, p.size);
      const ctx: StageContext = { signal: new AbortController().signal, progress: () => {}, timings: {} };
      const grid = { dims: p.size, spacing: p.spacing, origin: [0, 0, 0] as Vec3, direction: AXIAL, frameOfReferenceUID: '1.2.3' };
      const seg = await segmentChannels(model, input, grid, ctx);
      const d = dice(seg.labels, p.labels);
      const volErr = Math.abs(seg.measurements.whole_tumor_ml - p.truth.whole_tumor_ml) / p.truth.whole_tumor_ml;
      const voxels = p.size[0] * p.size[1] * p.size[2];
      console.log(
        `seed ${c.seed} ${p.size.join('x')} @ ${p.spacing[0]} mm: Dice WT ${d.toFixed(4)}, whole tumour ${seg.measurements.whole_tumor_ml} mL ` +
          `vs truth ${p.truth.whole_tumor_ml} mL (${(100 * volErr).toFixed(2)}%), volumes ${JSON.stringify(seg.measurements.volumes_ml)} ` +
          `vs ${JSON.stringify(p.truth.volumes_ml)}; inference ${ctx.timings.infer}s = ${Math.round(voxels / ctx.timings.infer!)} voxels/s`,
      );
      expect(d).toBeGreaterThanOrEqual(0.85);
      expect(volErr).toBeLessThanOrEqual(0.1);
      expect(seg.measurements.tumor_detected).toBe(true);
      expect(Object.keys(seg.measurements.volumes_ml).sort()).toEqual(['edema', 'enhancing', 'necrotic_core']);
    });
  }
});
