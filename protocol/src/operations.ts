import { z } from 'zod';
import { JobStatus, Timestamp } from './common.js';
import { JobView } from './status.js';

export const ListQuery = z.object({
  status: JobStatus.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(512).optional(),
});

export const ListResponse = z.object({
  items: z.array(JobView),
  next_cursor: z.string().nullable(),
});
export type ListResponse = z.infer<typeof ListResponse>;

export const JobActionResponse = z.object({ success: z.literal(true), request: JobView });
export type JobActionResponse = z.infer<typeof JobActionResponse>;

export const AgentView = z.object({
  agent_id: z.string(),
  last_seen_at: Timestamp,
  last_heartbeat_at: Timestamp.nullable(),
  current_request_id: z.string().nullable(),
});

export const MetricsResponse = z.object({
  counts: z.record(JobStatus, z.number().int().min(0)),
  queue_depth: z.number().int().min(0),
  oldest_pending_age_s: z.number().min(0).nullable(),
  agents: z.array(AgentView),
  now: Timestamp,
});
export type MetricsResponse = z.infer<typeof MetricsResponse>;

export const HealthResponse = z.object({ ok: z.boolean(), store: z.string(), error: z.string().optional() });
