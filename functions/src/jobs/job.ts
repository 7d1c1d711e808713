import type { JobStatus, JobView, Progress } from '@lab-relay/protocol';

/**
 * A request as stored. Times are epoch milliseconds so both stores can index and compare them;
 * the API renders them as ISO-8601.
 */
export interface Job {
  id: string;
  series_id: string;
  series_ids: string[];
  status: JobStatus;
  priority: number;
  attempts: number;
  max_attempts: number;
  created_at: number;
  updated_at: number;
  /** Claimable from this time (later than now while backing off after a retryable failure). */
  run_at: number;
  /** A pending job not claimed by this time fails (the queue TTL). */
  expires_at: number;
  started_at: number | null;
  completed_at: number | null;
  lease_token: string | null;
  lease_expires_at: number | null;
  /**
   * False while a claim made with `ack=1` awaits the agent's first heartbeat. An unacknowledged claim
   * that runs out (the answer never reached the agent) goes back to the queue without using an attempt.
   * Absent on jobs stored before this field existed: treated as acknowledged.
   */
  lease_acked?: boolean;
  /** Claims that ran out unacknowledged; after a few they count as attempts (a poison-job guard). */
  unacked_claims?: number;
  agent_id: string | null;
  progress: (Progress & { updated_at: number }) | null;
  cancel_requested: boolean;
  result: Record<string, unknown> | null;
  seg_instance_id: string | null;
  error: string | null;
  unfenced: boolean;
  /** The completion applied last, so a replay of it is recognised and answered without a change. */
  last_completion: { lease_token: string | null; digest: string } | null;
}

/** A job plus the store's opaque version, for compare-and-set. */
export interface Versioned {
  job: Job;
  version: string;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function toView(job: Job): JobView {
  return {
    request_id: job.id,
    series_id: job.series_id,
    series_ids: job.series_ids,
    status: job.status,
    priority: job.priority,
    result: job.result,
    seg_instance_id: job.seg_instance_id,
    error: job.error,
    attempts: job.attempts,
    max_attempts: job.max_attempts,
    progress: job.progress ? { ...job.progress, updated_at: new Date(job.progress.updated_at).toISOString() } : null,
    agent_id: job.agent_id,
    created_at: new Date(job.created_at).toISOString(),
    started_at: iso(job.started_at),
    completed_at: iso(job.completed_at),
    run_at: job.status === 'pending' ? iso(job.run_at) : null,
    cancel_requested: job.cancel_requested,
    unfenced: job.unfenced,
  };
}
