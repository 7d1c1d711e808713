import { z } from 'zod';
import { Progress, Timestamp } from './common.js';

export const HeartbeatRequest = z.strictObject({
  lease_token: z.string().min(1).max(128),
  progress: Progress.optional(),
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;

export const HeartbeatResponse = z.object({
  success: z.literal(true),
  /** true when the job was cancelled: the agent stops its work and reports nothing more. */
  cancel: z.boolean(),
  lease_expires_at: Timestamp,
  heartbeat_interval_s: z.number().positive(),
});
export type HeartbeatResponse = z.infer<typeof HeartbeatResponse>;
