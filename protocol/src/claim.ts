import { z } from 'zod';
import { Identifier, MAX_WAIT_SECONDS, RequestId, Timestamp } from './common.js';

export const PendingQuery = z.object({
  wait: z.coerce.number().min(0).max(MAX_WAIT_SECONDS, `must be at most ${MAX_WAIT_SECONDS} seconds`).optional(),
});

/** A claimed job: the seed's `{id, series_id, series_ids}` plus the lease. */
export const ClaimedJob = z.object({
  id: RequestId,
  series_id: Identifier,
  series_ids: z.array(Identifier).length(4),
  lease_token: z.string().min(16),
  lease_expires_at: Timestamp,
  heartbeat_interval_s: z.number().positive(),
  attempt: z.number().int().min(1),
  max_attempts: z.number().int().min(1),
  priority: z.number().int(),
  /** Signed upload targets for outputs, when the deployment has a blob store (a later issue). */
  uploads: z.record(z.string(), z.object({ url: z.string().url(), method: z.literal('PUT'), headers: z.record(z.string(), z.string()).optional() })).optional(),
});
export type ClaimedJob = z.infer<typeof ClaimedJob>;

export const PendingResponse = z.union([ClaimedJob, z.object({ id: z.null() })]);
export type PendingResponse = z.infer<typeof PendingResponse>;
