import { z } from 'zod';
import { Identifier, JobStatus, MODALITIES, RequestId } from './common.js';

const SeriesMap = z.strictObject({ t1: Identifier, t1c: Identifier, t2: Identifier, flair: Identifier });

/**
 * `series_ids` as the seed's ordered list [t1, t1c, t2, flair], or as a map by modality.
 * Both normalise to the ordered list, which is what is stored and handed to agents.
 */
export const SeriesIds = z
  .union([z.array(Identifier).length(4, 'must list exactly 4 series: [t1, t1c, t2, flair]'), SeriesMap])
  .transform((v) => (Array.isArray(v) ? v : MODALITIES.map((m) => v[m])));

export const StartRequest = z.strictObject({
  series_ids: SeriesIds,
  priority: z.number().int().min(-100).max(100).optional(),
  force: z.boolean().optional(),
  max_attempts: z.number().int().min(1).max(10).optional(),
});
export type StartRequest = z.input<typeof StartRequest>;

export const StartResponse = z.object({
  success: z.literal(true),
  request_id: RequestId,
  status: JobStatus,
  message: z.string(),
  /** true when an existing request was returned instead of queuing a new one. */
  existing: z.boolean(),
});
export type StartResponse = z.infer<typeof StartResponse>;
