/**
 * The result preview: the axial slice with the largest tumour area, FLAIR in grey with a coloured
 * semi-transparent overlay per subregion (opaque outline), and a legend underneath.
 */
import { PNG } from 'pngjs';
import { drawText, GLYPH_HEIGHT, textWidth } from './bitmap-font.js';
import type { SegmentDefinition } from './seg/segments.js';
import type { Vec3, Volume } from './volume.js';

export interface PreviewOptions {
  /** The background image (FLAIR) on the label map's grid. */
  background: Pick<Volume, 'dims' | 'data'>;
  labels: Uint8Array;
  segments: readonly SegmentDefinition[];
  /** Volume in mL per label value, shown in the legend when given. */
  volumesMl?: Readonly<Record<number, number>>;
  /** Small grids are enlarged by an integer factor until the image is at least this wide/high (default 384). */
  minSize?: number;
  /** Overlay opacity inside a region (default 0.4); outlines are drawn at 0.9. */
  alpha?: number;
}

export interface Preview {
  png: Buffer;
  /** 0-based slice index shown. */
  slice: number;
  /** Tumour voxels on that slice. */
  area: number;
  width: number;
  height: number;
  /** Display pixels per voxel. */
  scale: number;
}

/** The axial slice with the most non-zero labels (the middle slice when there is none). */
export function largestTumourSlice(labels: Uint8Array, dims: Vec3): { slice: number; area: number } {
  const plane = dims[0] * dims[1];
  let best = -1;
  let slice = Math.floor(dims[2] / 2);
  for (let k = 0; k < dims[2]; k++) {
    let n = 0;
    for (let q = k * plane, end = q + plane; q < end; q++) if (labels[q] !== 0) n++;
    if (n > best && n > 0) {
      best = n;
      slice = k;
    }
  }
  return { slice, area: Math.max(best, 0) };
}

/** Grey window from the 1st to 99.5th percentile of the slice's non-zero intensities. */
function windowOf(data: Float32Array, from: number, count: number): [number, number] {
  const values: number[] = [];
  for (let q = from; q < from + count; q++) if (data[q] !== 0) values.push(data[q]!);
  if (values.length === 0) return [0, 1];
  const sorted = Float32Array.from(values).sort();
  const lo = sorted[Math.floor(0.01 * (sorted.length - 1))]!;
  const hi = sorted[Math.floor(0.995 * (sorted.length - 1))]!;
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}

const FONT_SCALE = 2;
const PAD = 8;
const LINE = GLYPH_HEIGHT * FONT_SCALE + 8;
const LEGEND_BG = [24, 24, 24] as const;
const TEXT = [235, 235, 235] as const;

export function renderPreview(opts: PreviewOptions): Preview {
  const { dims, data } = opts.background;
  const [nx, ny, nz] = dims;
  const plane = nx * ny;
  if (opts.labels.length !== plane * nz || data.length !== plane * nz) {
    throw new Error(`preview: label map (${opts.labels.length}) and background (${data.length}) must both have ${plane * nz} voxels`);
  }
  const { slice, area } = largestTumourSlice(opts.labels, dims);
  const scale = Math.max(1, Math.ceil((opts.minSize ?? 384) / Math.max(nx, ny)));
  const alpha = opts.alpha ?? 0.4;

  const fmt = (ml: number): string => (ml >= 100 ? ml.toFixed(0) : ml.toFixed(1));
  const header = `AXIAL SLICE ${slice + 1}/${nz}  TUMOUR ${area} VOXELS`;
  const lines = opts.segments.map((s) => {
    const ml = opts.volumesMl?.[s.labelValue];
    return ml === undefined ? s.name : `${s.name}  ${fmt(ml)} ML`;
  });
  const box = GLYPH_HEIGHT * FONT_SCALE;
  const legendWidth = Math.max(textWidth(header, FONT_SCALE), ...lines.map((l) => box + 8 + textWidth(l, FONT_SCALE))) + 2 * PAD;
  const width = Math.max(nx * scale, legendWidth);
  const imageHeight = ny * scale;
  const height = imageHeight + PAD + LINE * (lines.length + 1) + PAD;
  const x0 = Math.floor((width - nx * scale) / 2);

  const png = new PNG({ width, height });
  const rgba = png.data;
  for (let o = 0; o < rgba.length; o += 4) {
    rgba[o] = LEGEND_BG[0];
    rgba[o + 1] = LEGEND_BG[1];
    rgba[o + 2] = LEGEND_BG[2];
    rgba[o + 3] = 255;
  }

  const colorOf = new Map(opts.segments.map((s) => [s.labelValue, s.color] as const));
  const base = slice * plane;
  const [lo, hi] = windowOf(data, base, plane);
  const labels = opts.labels;
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const q = base + j * nx + i;
      const g = Math.max(0, Math.min(255, ((data[q]! - lo) / (hi - lo)) * 255));
      let r = g, gr = g, b = g;
      const lab = labels[q]!;
      const c = lab !== 0 ? colorOf.get(lab) : undefined;
      if (c) {
        // Region edges are drawn nearly opaque so small subregions stay visible.
        const edge =
          (i > 0 && labels[q - 1] !== lab) || (i < nx - 1 && labels[q + 1] !== lab) ||
          (j > 0 && labels[q - nx] !== lab) || (j < ny - 1 && labels[q + nx] !== lab);
        const a = edge ? 0.9 : alpha;
        r = g * (1 - a) + c[0] * a;
        gr = g * (1 - a) + c[1] * a;
        b = g * (1 - a) + c[2] * a;
      }
      for (let dy = 0; dy < scale; dy++) {
        let o = ((j * scale + dy) * width + x0 + i * scale) * 4;
        for (let dx = 0; dx < scale; dx++, o += 4) {
          rgba[o] = r;
          rgba[o + 1] = gr;
          rgba[o + 2] = b;
          rgba[o + 3] = 255;
        }
      }
    }
  }

  let y = imageHeight + PAD;
  drawText(rgba, width, height, PAD, y, header, FONT_SCALE, TEXT);
  opts.segments.forEach((s, n) => {
    y += LINE;
    for (let dy = 0; dy < box; dy++) {
      for (let dx = 0; dx < box; dx++) {
        const o = ((y + dy) * width + PAD + dx) * 4;
        rgba[o] = s.color[0];
        rgba[o + 1] = s.color[1];
        rgba[o + 2] = s.color[2];
      }
    }
    drawText(rgba, width, height, PAD + box + 8, y, lines[n]!, FONT_SCALE, TEXT);
  });

  return { png: PNG.sync.write(png), slice, area, width, height, scale };
}
