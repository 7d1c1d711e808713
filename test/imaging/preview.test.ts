import { describe, it, expect } from '@jest/globals';
import { PNG } from 'pngjs';
import { renderPreview, largestTumourSlice } from '../../lab-agent/src/imaging/preview.js';
import { BRATS_SEGMENTS } from '../../lab-agent/src/imaging/seg/segments.js';
import { synthesizePhantom } from '../../lab-agent/src/phantom/synthesize.js';
import type { Vec3 } from '../../lab-agent/src/imaging/volume.js';

function hasColorNear(png: PNG, rgb: readonly number[], rows: [number, number], tol = 12): boolean {
  for (let y = rows[0]; y < rows[1]; y++) {
    for (let x = 0; x < png.width; x++) {
      const o = (y * png.width + x) * 4;
      if (Math.abs(png.data[o]! - rgb[0]!) <= tol && Math.abs(png.data[o + 1]! - rgb[1]!) <= tol && Math.abs(png.data[o + 2]! - rgb[2]!) <= tol) return true;
    }
  }
  return false;
}

describe('renderPreview', () => {
  const phantom = synthesizePhantom({ seed: 9, size: [48, 48, 32], spacing: [4, 4, 4] });
  const dims = phantom.size;

  it('picks the axial slice with the largest tumour area', () => {
    const labels = new Uint8Array(4 * 4 * 3);
    labels[16 + 1] = 2; // slice 1: one voxel
    labels.fill(3, 32, 35); // slice 2: three voxels
    expect(largestTumourSlice(labels, [4, 4, 3])).toEqual({ slice: 2, area: 3 });
    expect(largestTumourSlice(new Uint8Array(48), [4, 4, 3])).toEqual({ slice: 1, area: 0 });
  });

  it('renders a decodable PNG of the expected size with the overlay colours on the tumour slice', () => {
    const pv = renderPreview({
      background: { dims, data: phantom.channels.flair },
      labels: phantom.labels,
      segments: BRATS_SEGMENTS,
      volumesMl: { 1: phantom.truth.volumes_ml.necrotic_core, 2: phantom.truth.volumes_ml.edema, 3: phantom.truth.volumes_ml.enhancing },
    });
    const png = PNG.sync.read(pv.png);
    expect(png.width).toBe(pv.width);
    expect(png.height).toBe(pv.height);
    expect(pv.scale).toBe(8); // 48 voxels enlarged to at least 384 pixels
    expect(png.width).toBeGreaterThanOrEqual(48 * 8);
    expect(png.height).toBeGreaterThan(48 * 8);
    expect(pv.slice).toBe(largestTumourSlice(phantom.labels, dims as Vec3).slice);
    const image: [number, number] = [0, 48 * 8];
    // Outlines are drawn at 90% opacity, so each subregion's colour appears almost pure in the image.
    for (const s of BRATS_SEGMENTS) {
      const k = pv.slice * 48 * 48;
      if (!phantom.labels.subarray(k, k + 48 * 48).includes(s.labelValue)) continue;
      expect(hasColorNear(png, s.color, image, 30)).toBe(true);
    }
    // The legend below the image shows each colour as a pure swatch, and text in light grey.
    const legend: [number, number] = [48 * 8, png.height];
    for (const s of BRATS_SEGMENTS) expect(hasColorNear(png, s.color, legend, 0)).toBe(true);
    expect(hasColorNear(png, [235, 235, 235], legend, 0)).toBe(true);
    // The image (centred above the legend) is black outside the head: its corner voxel is background.
    const o = Math.floor((png.width - 48 * 8) / 2) * 4;
    expect([...png.data.subarray(o, o + 3)]).toEqual([0, 0, 0]);
  });

  it('renders the middle slice without overlay when nothing was found', () => {
    const pv = renderPreview({ background: { dims, data: phantom.channels.flair }, labels: new Uint8Array(phantom.labels.length), segments: BRATS_SEGMENTS });
    expect(pv.slice).toBe(16);
    const png = PNG.sync.read(pv.png);
    for (const s of BRATS_SEGMENTS) expect(hasColorNear(png, s.color, [0, 48 * 8], 10)).toBe(false);
  });

  it('rejects mismatched sizes', () => {
    expect(() => renderPreview({ background: { dims, data: phantom.channels.flair }, labels: new Uint8Array(5), segments: BRATS_SEGMENTS })).toThrow(/must both have/);
  });
});
