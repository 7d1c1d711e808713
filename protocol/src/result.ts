import { z } from 'zod';

/** Per-subregion volumes, named by the model manifest's labels (e.g. necrotic_core, edema, enhancing). */
export const VolumesMl = z.record(z.string().min(1).max(64), z.number().min(0));

/** An output the agent uploaded through a signed URL (object name as handed out by the API). */
export const OutputRef = z.object({
  object: z.string().min(1).max(512),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  content_type: z.string().max(128),
});
export type OutputRef = z.infer<typeof OutputRef>;

/**
 * The result fields the system itself understands; any further JSON fields a runner adds are kept
 * (the seed says "and any further result fields").
 */
export const ResultFields = z.looseObject({
  seg_instance_id: z.string().min(1).max(256).nullable().optional(),
  tumor_detected: z.boolean().optional(),
  tumor_volume_voxels: z.number().int().min(0).optional(),
  inference_time_seconds: z.number().min(0).optional(),
  volumes_ml: VolumesMl.optional(),
  whole_tumor_ml: z.number().min(0).optional(),
  timings: z.record(z.string(), z.number().min(0)).optional(),
  error: z.string().max(4000).optional(),
  outputs: z.record(z.string().max(32), OutputRef).optional(),
});
export type ResultFields = z.infer<typeof ResultFields>;
