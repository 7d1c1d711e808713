/**
 * Sliding-window throughput of a model on CPU (or another provider) through the agent's own inference path.
 *
 *   npx tsx models/bench-inference.ts [--model models/demo] [--size 240,240,155] [--spacing 1,1,1] [--threads 2] [--provider cpu]
 *
 * Prints one JSON line: voxels, windows, seconds per stage, voxels/s of the sliding window, peak RSS.
 */
import { parseArgs } from 'node:util';
import { DEMO_MODEL_DIR, loadModel } from '../lab-agent/src/imaging/model/load-model.js';
import { segmentChannels, stackChannels, type StageContext } from '../lab-agent/src/imaging/inference/segment.js';
import type { ExecutionProvider } from '../lab-agent/src/imaging/inference/session.js';
import { synthesizePhantom } from '../lab-agent/src/phantom/synthesize.js';
import { AXIAL, type Vec3 } from '../lab-agent/src/imaging/volume.js';

const triple = (s: string): Vec3 => {
  const v = s.split(',').map(Number);
  if (v.length !== 3 || v.some((x) => !(x > 0))) throw new Error(`expected three positive numbers, got '${s}'`);
  return v as Vec3;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: DEMO_MODEL_DIR },
      size: { type: 'string', default: '240,240,155' },
      spacing: { type: 'string', default: '1,1,1' },
      threads: { type: 'string', default: '2' },
      provider: { type: 'string', default: 'cpu' },
      seed: { type: 'string', default: '3001' },
    },
  });
  const size = triple(values.size);
  const spacing = triple(values.spacing);
  const model = await loadModel(values.model, {
    provider: values.provider as ExecutionProvider,
    intraOpThreads: Number(values.threads),
    onWarning: (w) => process.stderr.write(`warning: ${w}\n`),
  });
  const p = synthesizePhantom({ seed: Number(values.seed), size, spacing });
  const input = stackChannels(p.channels, model.manifest.channels, size);
  let windows = 0;
  const ctx: StageContext = {
    signal: new AbortController().signal,
    progress: (stage, f) => {
      if (stage === 'infer' && f > 0 && f < 1) windows++;
    },
    timings: {},
  };
  const grid = { dims: size, spacing, origin: [0, 0, 0] as Vec3, direction: AXIAL, frameOfReferenceUID: '1.2.3' };
  const seg = await segmentChannels(model, input, grid, ctx);
  const voxels = size[0] * size[1] * size[2];
  console.log(
    JSON.stringify({
      model: `${model.manifest.name} ${model.manifest.version}`,
      provider: model.provider,
      threads: Number(values.threads),
      size,
      voxels,
      roi: model.manifest.roi_size,
      overlap: model.manifest.overlap,
      windows: windows + 1,
      timings_s: ctx.timings,
      sliding_window_voxels_per_s: Math.round(voxels / ctx.timings.infer!),
      whole_tumor_ml: seg.measurements.whole_tumor_ml,
      truth_whole_tumor_ml: p.truth.whole_tumor_ml,
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    }),
  );
  await model.release();
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
