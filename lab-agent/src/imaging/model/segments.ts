/** The manifest's labels as the SEG writer's and preview's segment definitions. */
import type { SegmentDefinition } from '../seg/segments.js';
import type { ModelManifest } from './manifest.js';

// Used for labels whose manifest entry gives no colour: distinct, readable over greyscale.
const PALETTE: [number, number, number][] = [
  [230, 60, 60],
  [70, 200, 70],
  [250, 220, 40],
  [60, 140, 255],
  [230, 80, 230],
  [80, 230, 230],
];

export function segmentDefinitions(m: ModelManifest): SegmentDefinition[] {
  return m.labels.map((l, i) => ({
    labelValue: l.value,
    // SegmentLabel is a DICOM LO (64 chars): the short description, else the volumes_ml key.
    name: (l.description ?? l.name).slice(0, 64),
    category: l.category,
    type: l.type,
    color: l.color ?? PALETTE[i % PALETTE.length]!,
  }));
}
