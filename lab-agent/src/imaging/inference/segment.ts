/**
 * The model half of the pipeline on arrays already on one grid: stack -> normalise -> sliding-window
 * inference -> label map -> measurements. The DICOM pipeline and the demo-model test both run this.
 */
import type { Modality, ModelManifest } from '../model/manifest.js';
import { normaliseInPlace } from '../normalise.js';
import { labelMap, measure, type Measurements } from '../postprocess.js';
import { resampleToReference } from '../resample.js';
import { indexToPatient, voxelCount, type Vec3, type Volume } from '../volume.js';
import { slidingWindowInference, type ChannelVolume, type WindowPredictor } from './sliding-window.js';

/** Progress of one stage, 0..1. */
export type StageProgress = (stage: string, fraction: number) => void;

export interface StageContext {
  signal: AbortSignal;
  progress: StageProgress;
  /** Seconds per stage, filled in as stages finish. */
  timings: Record<string, number>;
}

/**
 * Runs one named stage: checks for cancellation first, reports 0 and 1, adds its time to
 * `timings[name]` (a stage run once per series, like load, accumulates).
 */
export async function stage<T>(ctx: StageContext, name: string, fn: () => T | Promise<T>): Promise<T> {
  ctx.signal.throwIfAborted();
  ctx.progress(name, 0);
  const t0 = performance.now();
  const r = await fn();
  ctx.timings[name] = Math.round(((ctx.timings[name] ?? 0) + (performance.now() - t0) / 1000) * 1000) / 1000;
  ctx.progress(name, 1);
  return r;
}

/** Stacks per-modality arrays (each x fastest) into one [C, N] input in the manifest's channel order. */
export function stackChannels(channels: Partial<Record<Modality, Float32Array>>, order: readonly Modality[], dims: Vec3): ChannelVolume {
  const n = dims[0] * dims[1] * dims[2];
  const data = new Float32Array(order.length * n);
  order.forEach((m, i) => {
    const ch = channels[m];
    if (!ch) throw new Error(`the model needs a ${m} series, none was given`);
    if (ch.length !== n) throw new Error(`${m} has ${ch.length} voxels, expected ${dims.join('x')} = ${n} (not on the reference grid)`);
    data.set(ch, i * n);
  });
  return { data, channels: order.length, dims: [...dims] };
}

export interface SegmentModel {
  manifest: ModelManifest;
  predict: WindowPredictor;
}

export interface Segmentation {
  labels: Uint8Array;
  measurements: Measurements;
  /** Seconds in the model itself (the sliding window), for `inference_time_seconds`. */
  inferenceSeconds: number;
}

/** The geometry of the grid the input is on (the reference series'). */
export type Grid = Pick<Volume, 'dims' | 'spacing' | 'origin' | 'direction' | 'frameOfReferenceUID'>;

/**
 * The grid with the model's voxel size covering the same field of view as `g` (outer voxel faces kept),
 * or undefined when `g` already has that voxel size (within 1%).
 */
export function modelGrid(g: Grid, target: Vec3 | undefined): Grid | undefined {
  if (!target || g.spacing.every((s, a) => Math.abs(s - target[a]!) <= 0.01 * target[a]!)) return undefined;
  const dims = g.dims.map((n, a) => Math.max(1, Math.round((n * g.spacing[a]!) / target[a]!))) as Vec3;
  // Centre of the new voxel 0, in the old grid's (fractional) index space: half a new voxel in from the face.
  const origin = indexToPatient(g, ...(g.spacing.map((s, a) => -0.5 + target[a]! / (2 * s)) as Vec3));
  return { dims, spacing: [...target], origin, direction: g.direction, frameOfReferenceUID: g.frameOfReferenceUID };
}

/** Each channel of `v` (on grid `from`) resampled trilinearly onto grid `to`. */
export function resampleChannels(v: ChannelVolume, from: Grid, to: Grid): ChannelVolume {
  const n = voxelCount(from.dims);
  const m = voxelCount(to.dims);
  const data = new Float32Array(v.channels * m);
  for (let c = 0; c < v.channels; c++) {
    const moving: Volume = { ...from, data: v.data.subarray(c * n, (c + 1) * n) };
    data.set(resampleToReference(moving, to).data, c * m);
  }
  return { data, channels: v.channels, dims: [...to.dims] };
}

/**
 * Runs the model on `input` (on `grid`) and measures. Stages: [model_resample], normalise, infer,
 * [model_resample], postprocess. When the manifest gives a target spacing that the grid does not have,
 * the input is resampled to it and the model output (logits/probabilities) back to `grid`, so the label
 * map and the volumes are always on the reference grid. Normalises IN PLACE (the caller's stacked copy).
 */
export async function segmentChannels(model: SegmentModel, input: ChannelVolume, grid: Grid, ctx: StageContext): Promise<Segmentation> {
  const m = model.manifest;
  if (input.channels !== m.channels.length) throw new Error(`input has ${input.channels} channels, model ${m.name} expects ${m.channels.length}`);
  const target = modelGrid(grid, m.target_spacing_mm);
  if (target) input = await stage(ctx, 'model_resample', () => resampleChannels(input, grid, target));
  await stage(ctx, 'normalise', () => normaliseInPlace(input.data, input.channels, m.normalisation));
  let out = await stage(ctx, 'infer', () =>
    slidingWindowInference(input, model.predict, {
      roiSize: m.roi_size,
      overlap: m.overlap,
      signal: ctx.signal,
      onProgress: (done, total) => ctx.progress('infer', done / total),
    }),
  );
  if (target) {
    const onModelGrid = out;
    out = await stage(ctx, 'model_resample', () => resampleChannels(onModelGrid, target, grid));
  }
  const post = await stage(ctx, 'postprocess', () => {
    const labels = labelMap(out, m.output);
    return { labels, measurements: measure(labels, grid.spacing, m.labels) };
  });
  return { ...post, inferenceSeconds: ctx.timings.infer ?? 0 };
}
