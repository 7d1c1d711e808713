import { AXIAL, type Vec3, type Volume } from '../imaging/volume.js';
import type { Modality, Phantom } from './synthesize.js';

/**
 * The patient-space grid the phantom is written on: axial slices, the field of view centred on the
 * patient origin (as a scanner centres the head at the isocentre).
 */
export function phantomGrid(size: Vec3, spacing: Vec3, offset: Vec3 = [0, 0, 0]): Pick<Volume, 'dims' | 'spacing' | 'origin' | 'direction'> {
  const origin: Vec3 = [
    (-(size[0] - 1) / 2) * spacing[0] + offset[0],
    (-(size[1] - 1) / 2) * spacing[1] + offset[1],
    (-(size[2] - 1) / 2) * spacing[2] + offset[2],
  ];
  return { dims: [...size], spacing: [...spacing], origin, direction: { row: [...AXIAL.row], col: [...AXIAL.col], normal: [...AXIAL.normal] } };
}

/** One phantom channel (or, with `'labels'`, the label map as floats) as a Volume on the phantom grid. */
export function phantomVolume(phantom: Phantom, channel: Modality | 'labels', frameOfReferenceUID = '2.25.1'): Volume {
  const data = channel === 'labels' ? Float32Array.from(phantom.labels) : phantom.channels[channel];
  return { ...phantomGrid(phantom.size, phantom.spacing), data, frameOfReferenceUID };
}
