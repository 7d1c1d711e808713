import { z } from 'zod';
import { Identifier, MAX_WAIT_SECONDS, RequestId, Timestamp } from './common.js';

/** A signed URL for one object and one method; `headers` must be sent exactly (they are signed). */
export const SignedTarget = z.object({
  url: z.string().url(),
  /** The object this URL reaches (what a completion lists under `outputs`). */
  object: z.string().min(1).max(512),
  method: z.enum(['PUT', 'GET']),
  headers: z.record(z.string(), z.string()),
  expires_at: Timestamp,
});
export type SignedTarget = z.infer<typeof SignedTarget>;

/** `POST /api/inference/{id}/uploads`: fresh upload URLs when the ones from the claim expired. */
export const UploadsRequest = z.strictObject({ lease_token: z.string().min(1).max(128) });
export const UploadsResponse = z.object({ success: z.literal(true), uploads: z.record(z.string(), SignedTarget) });
export type UploadsResponse = z.infer<typeof UploadsResponse>;

export const PendingQuery = z.object({
  wait: z.coerce.number().min(0).max(MAX_WAIT_SECONDS, `must be at most ${MAX_WAIT_SECONDS} seconds`).optional(),
  /**
   * `1`: the caller acknowledges a claim with its first heartbeat. Until then the lease is short, and a
   * claim whose answer never arrived goes back to the queue without using an attempt. (Off for the
   * seed's worker, which never heartbeats.)
   */
  ack: z.enum(['0', '1']).optional(),
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
  /** Signed upload targets for the outputs (seg, preview), when the deployment has a blob store. */
  uploads: z.record(z.string(), SignedTarget).optional(),
});
export type ClaimedJob = z.infer<typeof ClaimedJob>;

export const PendingResponse = z.union([ClaimedJob, z.object({ id: z.null() })]);
export type PendingResponse = z.infer<typeof PendingResponse>;
