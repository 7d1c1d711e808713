import { z } from 'zod';
import { ResultFields } from './result.js';

/**
 * The seed's completion body (`success`, `seg_instance_id`, `tumor_detected`, `tumor_volume_voxels`,
 * `inference_time_seconds`, more fields allowed) plus the lease fence. `lease_token` is optional only
 * for the seed's own worker, which never had one.
 */
export const CompleteRequest = ResultFields.extend({
  success: z.boolean(),
  lease_token: z.string().min(1).max(128).optional(),
  /** On failure: true when another attempt may succeed (a crash, a timeout, a lost download). */
  retryable: z.boolean().optional(),
});
export type CompleteRequest = z.infer<typeof CompleteRequest>;

export const CompleteResponse = z.object({
  success: z.literal(true),
  /** What the request became: completed, failed, or pending again for a retry. */
  status: z.enum(['pending', 'completed', 'failed']),
  /** true when this exact completion had already been applied (a replay). */
  replay: z.boolean(),
});
export type CompleteResponse = z.infer<typeof CompleteResponse>;
