/**
 * From model output to what the job reports: the label map (per the manifest's output convention) and
 * the measurements (voxel counts, mL per subregion, whole tumour).
 */
import type { OutputConvention } from './model/manifest.js';
import type { ChannelVolume } from './inference/sliding-window.js';
import type { Vec3 } from './volume.js';

/** Label map (0 background) from the sliding-window output, per the output convention. */
export function labelMap(out: ChannelVolume, conv: OutputConvention): Uint8Array {
  const n = out.dims[0] * out.dims[1] * out.dims[2];
  const labels = new Uint8Array(n);
  const d = out.data;
  if (conv.convention === 'sigmoid_tc_wt_et') {
    if (out.channels !== 3) throw new Error(`sigmoid_tc_wt_et needs 3 output channels [TC, WT, ET], the model gave ${out.channels}`);
    // sigmoid(x) > t  <=>  x > logit(t): threshold logits directly, no exp per voxel.
    const t = conv.activation === 'logits' ? Math.log(conv.threshold / (1 - conv.threshold)) : conv.threshold;
    const { core, edema, enhancing } = conv.label_values;
    for (let i = 0; i < n; i++) {
      // MONAI BraTS: ET wins, then TC (core), then WT (oedema).
      if (d[2 * n + i]! > t) labels[i] = enhancing;
      else if (d[i]! > t) labels[i] = core;
      else if (d[n + i]! > t) labels[i] = edema;
    }
    return labels;
  }
  const map = conv.channel_labels;
  if (out.channels !== map.length) throw new Error(`softmax_labels lists ${map.length} channels, the model gave ${out.channels}`);
  // softmax is monotonic: the argmax of the logits is the argmax of the probabilities.
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bv = d[i]!;
    for (let c = 1; c < map.length; c++) {
      const v = d[c * n + i]!;
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    labels[i] = map[best]!;
  }
  return labels;
}

export interface Measurements {
  tumor_detected: boolean;
  /** Whole tumour: every voxel with a label > 0. */
  tumor_volume_voxels: number;
  /** mL per label name (every label in the manifest, 0 when absent). */
  volumes_ml: Record<string, number>;
  whole_tumor_ml: number;
  /** Voxels per label name. */
  voxels: Record<string, number>;
}

/** Rounded to 0.001 mL (1 mm^3): finer digits are noise and make results harder to compare. */
const roundMl = (v: number): number => Math.round(v * 1000) / 1000;

export function measure(labels: Uint8Array, spacing: Vec3, defs: readonly { value: number; name: string }[]): Measurements {
  for (const s of spacing) if (!(s > 0)) throw new Error(`voxel spacing must be positive, got [${spacing.join(', ')}]`);
  const counts = new Float64Array(256);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  const voxelMl = (spacing[0] * spacing[1] * spacing[2]) / 1000;
  let whole = 0;
  for (let v = 1; v < 256; v++) whole += counts[v]!;
  const volumes_ml: Record<string, number> = {};
  const voxels: Record<string, number> = {};
  for (const d of defs) {
    voxels[d.name] = counts[d.value]!;
    volumes_ml[d.name] = roundMl(counts[d.value]! * voxelMl);
  }
  return { tumor_detected: whole > 0, tumor_volume_voxels: whole, volumes_ml, whole_tumor_ml: roundMl(whole * voxelMl), voxels };
}
