import { z } from 'zod';
import { SignedTarget } from './claim.js';
import { Identifier, JobStatus, Progress, RequestId, Timestamp } from './common.js';

/** One request as the API shows it (status answers, the operations list, cancel/retry answers). */
export const JobView = z.object({
  request_id: RequestId,
  series_id: Identifier,
  series_ids: z.array(Identifier).length(4),
  status: JobStatus,
  priority: z.number().int(),
  result: z.record(z.string(), z.unknown()).nullable(),
  seg_instance_id: z.string().nullable(),
  error: z.string().nullable(),
  attempts: z.number().int().min(0),
  max_attempts: z.number().int().min(1),
  progress: Progress.extend({ updated_at: Timestamp }).nullable(),
  agent_id: z.string().nullable(),
  created_at: Timestamp,
  started_at: Timestamp.nullable(),
  completed_at: Timestamp.nullable(),
  /** When a pending request becomes claimable (later than now while it backs off after a failure). */
  run_at: Timestamp.nullable(),
  cancel_requested: z.boolean(),
  /** true when the completion came without a lease token (the seed's worker). */
  unfenced: z.boolean(),
  /** Short-lived signed download URLs for the uploaded outputs (status answers only). */
  downloads: z.record(z.string(), SignedTarget).optional(),
});
export type JobView = z.infer<typeof JobView>;

/** `GET /api/inference/{series_id}/status`: the seed's shape is a subset of the view. */
export const StatusResponse = JobView;
export type StatusResponse = JobView;
