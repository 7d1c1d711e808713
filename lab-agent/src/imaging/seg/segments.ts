/** Coded segment definitions for the BraTS tumour subregions, shared by the SEG writer and the preview. */

export interface Code {
  value: string;
  scheme: string;
  meaning: string;
}

export interface SegmentDefinition {
  /** Value of this segment in the label map. */
  labelValue: number;
  /** SegmentLabel, also the legend text. */
  name: string;
  category: Code;
  type: Code;
  /** Display colour (sRGB 0..255), written as RecommendedDisplayCIELabValue. */
  color: [number, number, number];
}

export const MORPHOLOGICALLY_ABNORMAL: Code = { value: '49755003', scheme: 'SCT', meaning: 'Morphologically abnormal structure' };

/** Label values 1/2/3 as produced by the post-processing (BraTS 2023 style). */
export const BRATS_SEGMENTS: readonly SegmentDefinition[] = [
  { labelValue: 1, name: 'Necrotic core', category: MORPHOLOGICALLY_ABNORMAL, type: { value: '6574001', scheme: 'SCT', meaning: 'Necrosis' }, color: [230, 60, 60] },
  { labelValue: 2, name: 'Edema', category: MORPHOLOGICALLY_ABNORMAL, type: { value: '79654002', scheme: 'SCT', meaning: 'Edema' }, color: [70, 200, 70] },
  { labelValue: 3, name: 'Enhancing tumor', category: MORPHOLOGICALLY_ABNORMAL, type: { value: 'C113842', scheme: 'NCIt', meaning: 'Enhancing Lesion' }, color: [250, 220, 40] },
];

/** sRGB (0..255) -> DICOM CIELab (PS3.3 C.10.7.1.1: L* 0..100, a* and b* -128..127, each scaled to 0..65535). */
export function srgbToDicomLab(rgb: readonly [number, number, number]): [number, number, number] {
  const lin = rgb.map((c) => {
    const v = c / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  // D65 reference white, as DICOM specifies.
  const x = (0.4124 * lin[0] + 0.3576 * lin[1] + 0.1805 * lin[2]) / 0.95047;
  const y = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  const z = (0.0193 * lin[0] + 0.1192 * lin[1] + 0.9505 * lin[2]) / 1.08883;
  const f = (t: number): number => (t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116);
  const L = 116 * f(y) - 16;
  const a = 500 * (f(x) - f(y));
  const b = 200 * (f(y) - f(z));
  const clamp = (v: number): number => Math.max(0, Math.min(65535, Math.round(v)));
  return [clamp((L * 65535) / 100), clamp(((a + 128) * 65535) / 255), clamp(((b + 128) * 65535) / 255)];
}
