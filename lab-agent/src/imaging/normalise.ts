/**
 * Intensity normalisation of the stacked model input, as MONAI's
 * NormalizeIntensity(nonzero=True, channel_wise=True): per channel, mean and (population) standard
 * deviation over the voxels that are non-zero in that channel; those voxels become (v - mean) / std and
 * zero voxels (outside the head) stay 0. The demo model's training data goes through this same function.
 */

export type Normalisation = 'zscore_nonzero' | 'none';

export interface ChannelStats {
  mean: number;
  std: number;
  nonzero: number;
}

/** Normalises `data` ([C, N], channel-major) in place and returns each channel's statistics. */
export function normaliseInPlace(data: Float32Array, channels: number, mode: Normalisation): ChannelStats[] {
  if (mode === 'none') return [];
  if (mode !== 'zscore_nonzero') throw new Error(`unknown normalisation '${String(mode)}'`);
  if (channels < 1 || data.length % channels !== 0) throw new Error(`${data.length} values do not split into ${channels} channels`);
  const n = data.length / channels;
  const stats: ChannelStats[] = [];
  for (let c = 0; c < channels; c++) {
    const ch = data.subarray(c * n, (c + 1) * n);
    stats.push(zscoreNonzero(ch));
  }
  return stats;
}

/** z-score over the non-zero voxels of one channel, in place. */
export function zscoreNonzero(ch: Float32Array): ChannelStats {
  let count = 0;
  let sum = 0;
  for (let i = 0; i < ch.length; i++) {
    const v = ch[i]!;
    if (v !== 0) {
      count++;
      sum += v;
    }
  }
  if (count === 0) return { mean: 0, std: 0, nonzero: 0 };
  const mean = sum / count;
  // Second pass for the variance: one-pass sums lose precision on 10^7 voxels of values ~10^3.
  let ss = 0;
  for (let i = 0; i < ch.length; i++) {
    const v = ch[i]!;
    if (v !== 0) ss += (v - mean) * (v - mean);
  }
  const std = Math.sqrt(ss / count);
  // A constant channel: MONAI divides by 1 instead of 0.
  const div = std > 0 ? std : 1;
  for (let i = 0; i < ch.length; i++) {
    const v = ch[i]!;
    if (v !== 0) ch[i] = (v - mean) / div;
  }
  return { mean, std, nonzero: count };
}
