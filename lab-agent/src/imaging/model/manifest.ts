/**
 * The model manifest: a JSON file beside the `.onnx` that says how to feed the model and how to read its
 * output. Nothing about a model is guessed from the ONNX file; the file is only checked against this.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

export const MODALITIES = ['t1', 't1c', 't2', 'flair'] as const;
export const Modality = z.enum(MODALITIES);
export type Modality = z.infer<typeof Modality>;

/** A DICOM code triplet (CodeValue, CodingSchemeDesignator, CodeMeaning) for the SEG's segment codes. */
export const Code = z.object({
  value: z.string().min(1).max(64),
  scheme: z.string().min(1).max(16),
  meaning: z.string().min(1).max(64),
});
export type Code = z.infer<typeof Code>;

export const CATEGORY_ABNORMAL: Code = { value: '49755003', scheme: 'SCT', meaning: 'Morphologically abnormal structure' };

const Vec3Int = z.tuple([z.number().int().min(1), z.number().int().min(1), z.number().int().min(1)]);

export const LabelDef = z.object({
  /** The value in the label map (1..255; 0 is background). */
  value: z.number().int().min(1).max(255),
  /** Key in `volumes_ml`: lower snake case. */
  name: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'label names are lower snake case (they become volumes_ml keys)'),
  description: z.string().max(200).optional(),
  category: Code.default(CATEGORY_ABNORMAL),
  type: Code,
  /** Recommended display colour, 0..255 RGB (the preview and the SEG use it). */
  color: z.tuple([z.number().int().min(0).max(255), z.number().int().min(0).max(255), z.number().int().min(0).max(255)]).optional(),
});
export type LabelDef = z.infer<typeof LabelDef>;

/**
 * MONAI BraTS: 3 sigmoid channels [TC, WT, ET]; a voxel is ET if ET > t, else core if TC > t, else oedema
 * if WT > t. `label_values` says which label value each of those three regions gets.
 */
export const SigmoidTcWtEt = z.object({
  convention: z.literal('sigmoid_tc_wt_et'),
  /** Threshold on the probability; the model may output probabilities or logits (`activation`). */
  threshold: z.number().gt(0).lt(1).default(0.5),
  /** 'logits': the ONNX output is pre-sigmoid (the pipeline applies the sigmoid); 'probabilities': already applied. */
  activation: z.enum(['logits', 'probabilities']).default('logits'),
  label_values: z
    .object({ core: z.number().int().min(1).max(255), edema: z.number().int().min(1).max(255), enhancing: z.number().int().min(1).max(255) })
    .default({ core: 1, edema: 2, enhancing: 3 }),
});

/** C channels (logits or probabilities); the argmax channel index maps to `channel_labels[index]` (0 = background). */
export const SoftmaxLabels = z.object({
  convention: z.literal('softmax_labels'),
  channel_labels: z.array(z.number().int().min(0).max(255)).min(2).max(256),
});

export const OutputConvention = z.discriminatedUnion('convention', [SigmoidTcWtEt, SoftmaxLabels]);
export type OutputConvention = z.infer<typeof OutputConvention>;

export const ModelManifest = z
  .object({
    name: z.string().min(1).max(128),
    version: z.string().min(1).max(64),
    description: z.string().max(2000).optional(),
    /** The ONNX file, relative to the manifest. */
    onnx: z.string().min(1).default('model.onnx'),
    input_name: z.string().min(1),
    output_name: z.string().min(1),
    /** Channel order of the input tensor. */
    channels: z.array(Modality).min(1).max(4),
    /**
     * Order of the three spatial axes in the tensor [N, C, a, b, c]. 'xyz' (MONAI/nibabel: [N, C, X, Y, Z])
     * or 'zyx' ([N, C, Z, Y, X], a numpy array of DICOM slices). x = columns, y = rows, z = slices.
     */
    axis_order: z.enum(['xyz', 'zyx']).default('xyz'),
    normalisation: z.enum(['zscore_nonzero', 'none']),
    /** Voxel size (mm, x y z) the model was trained at; the pipeline resamples to it when given. */
    target_spacing_mm: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]).optional(),
    /** Sliding-window size in voxels, x y z. */
    roi_size: Vec3Int,
    overlap: z.number().min(0).max(0.9),
    /** Every tensor spatial dim must be a multiple of this (U-Net downsampling). */
    spatial_multiple: z.number().int().min(1).default(1),
    output: OutputConvention,
    labels: z.array(LabelDef).min(1),
    reference_modality: Modality.default('flair'),
    allow_different_frame_of_reference: z.boolean().default(false),
  })
  .superRefine((m, ctx) => {
    const issue = (message: string, p: (string | number)[]) => ctx.addIssue({ code: 'custom', message, path: p });
    if (new Set(m.channels).size !== m.channels.length) issue(`channels lists a modality twice: ${m.channels.join(', ')}`, ['channels']);
    m.roi_size.forEach((r, i) => {
      if (r % m.spatial_multiple !== 0) issue(`roi_size[${i}] = ${r} is not a multiple of spatial_multiple ${m.spatial_multiple}`, ['roi_size', i]);
    });
    const values = new Set<number>();
    const names = new Set<string>();
    for (const [i, l] of m.labels.entries()) {
      if (values.has(l.value)) issue(`label value ${l.value} is listed twice`, ['labels', i, 'value']);
      if (names.has(l.name)) issue(`label name '${l.name}' is listed twice`, ['labels', i, 'name']);
      values.add(l.value);
      names.add(l.name);
    }
    const produced =
      m.output.convention === 'sigmoid_tc_wt_et'
        ? [m.output.label_values.core, m.output.label_values.edema, m.output.label_values.enhancing]
        : m.output.channel_labels.filter((v) => v !== 0);
    for (const v of produced) {
      if (!values.has(v)) issue(`output convention produces label value ${v}, which labels does not define`, ['output']);
    }
    if (m.output.convention === 'sigmoid_tc_wt_et' && new Set(produced).size !== 3) {
      issue('sigmoid_tc_wt_et label_values must be three different values', ['output', 'label_values']);
    }
  });
export type ModelManifest = z.infer<typeof ModelManifest>;

/** Number of channels the model must output under the manifest's convention. */
export function outputChannels(m: ModelManifest): number {
  return m.output.convention === 'sigmoid_tc_wt_et' ? 3 : m.output.channel_labels.length;
}

/** Parses and validates manifest JSON; the error names the file and every problem. */
export function parseManifest(json: unknown, source = 'model manifest'): ModelManifest {
  const r = ModelManifest.safeParse(json);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
    throw new Error(`invalid model manifest ${source}: ${problems}`);
  }
  return r.data;
}

/** A manifest read from disk, with the absolute path of its ONNX file. */
export interface LoadedManifest {
  manifest: ModelManifest;
  manifestPath: string;
  onnxPath: string;
}

/**
 * Reads a manifest. `p` is the manifest JSON, or a directory holding `model.json`, or an `.onnx` file with
 * a `model.json` beside it.
 */
export async function readManifest(p: string): Promise<LoadedManifest> {
  let manifestPath = p;
  if (p.endsWith('.onnx')) manifestPath = path.join(path.dirname(p), 'model.json');
  else if (!p.endsWith('.json')) manifestPath = path.join(p, 'model.json');
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (e) {
    throw new Error(`cannot read model manifest ${manifestPath}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`model manifest ${manifestPath} is not valid JSON: ${(e as Error).message}`);
  }
  const manifest = parseManifest(json, manifestPath);
  const onnxPath = p.endsWith('.onnx') ? path.resolve(p) : path.resolve(path.dirname(manifestPath), manifest.onnx);
  return { manifest, manifestPath, onnxPath };
}
