import { z } from 'zod';

/** The seed's four statuses plus `cancelled`. */
export const JOB_STATUSES = ['pending', 'processing', 'completed', 'failed', 'cancelled'] as const;
export const JobStatus = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;

/** The four BraTS modalities in the seed's order (T1, T1 post-contrast, T2, FLAIR). */
export const MODALITIES = ['t1', 't1c', 't2', 'flair'] as const;
export type Modality = (typeof MODALITIES)[number];

/**
 * Identifiers that travel in URL paths: a PACS series id, a SeriesInstanceUID, a folder name.
 * Control characters and slashes are refused so an id can never address another resource.
 */
export const Identifier = z
  .string()
  .min(1, 'must not be empty')
  .max(256, 'must be at most 256 characters')
  .refine((s) => !/[\u0000-\u001f\u007f/\\]/.test(s), 'must not contain control characters or slashes')
  .refine((s) => s !== '.' && s !== '..', 'must not be "." or ".."');

export const RequestId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, "_" or "-"');

/** ISO-8601 timestamps on the wire (the seed's `created_at: "2026-01-20T17:00:00Z"`). */
export const Timestamp = z.string().datetime({ offset: true });

export const Progress = z.object({
  stage: z.string().min(1).max(64),
  percent: z.number().min(0).max(100),
});
export type Progress = z.infer<typeof Progress>;

export const ErrorBody = z.object({
  success: z.literal(false).optional(),
  error: z.string(),
  details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Header an agent uses to name itself (shown in metrics and the dashboard). */
export const AGENT_ID_HEADER = 'x-agent-id';
export const AgentId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._:-]+$/, 'must be letters, digits, ".", "_", ":" or "-"');

/** Long-poll bound: below the 30 s client/proxy timeouts common in front of Cloud Functions. */
export const MAX_WAIT_SECONDS = 25;
