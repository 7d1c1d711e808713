import type { CompleteRequest, Progress } from '@lab-relay/protocol';
import type { Job } from './job.js';
import { backoffMs, type JobPolicy } from './policy.js';

/**
 * The job state machine as pure functions over a job record and a clock. The stores only load,
 * query candidates and compare-and-set, so both stores share exactly this behaviour.
 */

export type Rejection = { ok: false; code: 404 | 409; error: string };
export type Outcome<T> = ({ ok: true } & T) | Rejection;

const conflict = (error: string): Rejection => ({ ok: false, code: 409, error });

export interface NewJobInput {
  id: string;
  series_id: string;
  series_ids: string[];
  priority?: number | undefined;
  max_attempts?: number | undefined;
}

/** The state of a request about to run from scratch: queued now, nothing claimed or reported yet. */
function freshRun(now: number, policy: JobPolicy) {
  return {
    status: 'pending' as const,
    attempts: 0,
    run_at: now,
    expires_at: now + policy.pendingTtlMs,
    started_at: null,
    completed_at: null,
    lease_token: null,
    lease_expires_at: null,
    agent_id: null,
    progress: null,
    cancel_requested: false,
    result: null,
    seg_instance_id: null,
    error: null,
    unfenced: false,
    last_completion: null,
    updated_at: now,
  };
}

export function newJob(input: NewJobInput, now: number, policy: JobPolicy): Job {
  return {
    id: input.id,
    series_id: input.series_id,
    series_ids: [...input.series_ids],
    priority: input.priority ?? 0,
    max_attempts: input.max_attempts ?? policy.maxAttempts,
    created_at: now,
    ...freshRun(now, policy),
  };
}

export type StartDecision =
  | { kind: 'existing' }
  | { kind: 'conflict'; error: string }
  | { kind: 'create'; supersede: boolean };

/**
 * The seed made a second start for a series fail on a unique key. Here it returns the live or
 * completed request; a failed or cancelled one, or `force`, queues a new run.
 */
export function decideStart(existing: Job | null, input: { series_ids: string[]; force?: boolean | undefined }): StartDecision {
  if (!existing || existing.status === 'failed' || existing.status === 'cancelled') return { kind: 'create', supersede: false };
  if (input.force) return { kind: 'create', supersede: existing.status !== 'completed' };
  const same = existing.series_ids.length === input.series_ids.length && existing.series_ids.every((s, i) => s === input.series_ids[i]);
  if (!same) {
    return {
      kind: 'conflict',
      error: `series ${existing.series_id} already has request ${existing.id} (${existing.status}) with different series_ids; send force: true to replace it`,
    };
  }
  return { kind: 'existing' };
}

/** A request replaced by a forced start stops: a running agent learns it at its next heartbeat. */
export function supersede(job: Job, byId: string, now: number): Job {
  return {
    ...job,
    status: 'cancelled',
    cancel_requested: job.status === 'processing',
    error: `superseded by request ${byId}`,
    completed_at: now,
    updated_at: now,
  };
}

export type ClaimDecision = { kind: 'claimed'; job: Job } | { kind: 'failed'; job: Job } | { kind: 'skip' };

/**
 * Claims a pending job whose time has come, or a processing job whose lease ran out (its agent died):
 * that one starts another attempt, or fails once its attempts are used up.
 */
export function claim(job: Job, now: number, policy: JobPolicy, lease: { token: string; agentId: string; ack?: boolean | undefined }): ClaimDecision {
  const swept = sweep(job, now);
  if (swept?.status === 'failed') return { kind: 'failed', job: swept };
  const j = swept ?? job;
  if (j.status !== 'pending' || j.run_at > now) return { kind: 'skip' };
  return {
    kind: 'claimed',
    job: {
      ...j,
      status: 'processing',
      attempts: j.attempts + 1,
      started_at: now,
      updated_at: now,
      lease_token: lease.token,
      lease_expires_at: now + (lease.ack ? policy.ackMs : policy.leaseMs),
      lease_acked: !lease.ack,
      agent_id: lease.agentId,
      progress: { stage: 'claimed', percent: 0, updated_at: now },
    },
  };
}

/** Unacknowledged claims that may run out before they start counting as attempts. */
const MAX_UNACKED_CLAIMS = 3;

/**
 * Undoes a claim whose answer never reached the agent (its long-poll connection closed first), so
 * the job goes straight back to the queue instead of waiting for the lease to run out.
 */
export function release(job: Job, token: string, now: number): Job | null {
  if (job.status !== 'processing' || job.lease_token !== token) return null;
  return {
    ...job,
    status: 'pending',
    attempts: Math.max(0, job.attempts - 1),
    run_at: now,
    started_at: null,
    lease_token: null,
    lease_expires_at: null,
    agent_id: null,
    progress: null,
    updated_at: now,
  };
}

/**
 * Expiry without a claimer: a pending job past its TTL fails; a processing job whose lease ran out
 * goes back to the queue (or fails when its attempts are used up). Returns null when nothing changes.
 */
export function sweep(job: Job, now: number): Job | null {
  if (job.status === 'pending' && job.expires_at <= now) {
    const hours = Math.round(((job.expires_at - job.run_at) / 3_600_000) * 100) / 100;
    return {
      ...job,
      status: 'failed',
      error: `expired: no agent claimed the request within ${hours} h`,
      completed_at: now,
      updated_at: now,
    };
  }
  if (job.status === 'processing' && job.lease_expires_at !== null && job.lease_expires_at <= now) {
    const who = job.agent_id ? ` on agent ${job.agent_id}` : '';
    const unacked = job.lease_acked === false && (job.unacked_claims ?? 0) < MAX_UNACKED_CLAIMS;
    if (unacked) {
      // The claim's answer never reached the agent (it left, or a proxy dropped it): not an attempt.
      return {
        ...job,
        status: 'pending',
        attempts: Math.max(0, job.attempts - 1),
        unacked_claims: (job.unacked_claims ?? 0) + 1,
        lease_token: null,
        lease_expires_at: null,
        lease_acked: true,
        agent_id: null,
        started_at: null,
        progress: null,
        run_at: now,
        updated_at: now,
        error: `the claim by ${job.agent_id ? `agent ${job.agent_id}` : 'an agent'} was never acknowledged (its answer was lost); requeued`,
      };
    }
    const error = `lease expired${who} (no heartbeat) during attempt ${job.attempts} of ${job.max_attempts}`;
    const released = { ...job, lease_token: null, lease_expires_at: null, progress: null, updated_at: now, error };
    if (job.attempts >= job.max_attempts) return { ...released, status: 'failed', completed_at: now };
    // The TTL counts from when the job is claimable again, like a newly queued one.
    return { ...released, status: 'pending', run_at: now, expires_at: now + (job.expires_at - job.run_at) };
  }
  return null;
}

export function heartbeat(
  job: Job,
  token: string,
  progress: Progress | undefined,
  now: number,
  policy: JobPolicy,
): Outcome<{ job: Job; cancel: boolean; changed: boolean }> {
  if (job.lease_token !== token) return conflict('lease is no longer held by this agent (expired and reclaimed, or the request was reset)');
  if (job.status === 'cancelled') return { ok: true, job, cancel: true, changed: false };
  if (job.status !== 'processing') return conflict(`request is ${job.status}; heartbeats are over`);
  // A late heartbeat on an expired lease still renews it as long as nobody reclaimed the job.
  return {
    ok: true,
    cancel: false,
    changed: true,
    job: {
      ...job,
      lease_expires_at: now + policy.leaseMs,
      lease_acked: true,
      updated_at: now,
      progress: progress ? { ...progress, updated_at: now } : job.progress,
    },
  };
}

export type CompleteBody = CompleteRequest;

export function complete(
  job: Job,
  body: CompleteBody,
  digest: string,
  now: number,
  policy: JobPolicy,
  random: () => number,
): Outcome<{ job: Job; replay: boolean }> {
  const token = body.lease_token ?? null;
  const last = job.last_completion;
  if (last && last.lease_token === token && last.digest === digest) return { ok: true, job, replay: true };
  if (job.status === 'cancelled') return conflict('request was cancelled; the result was discarded');
  if (job.status !== 'processing') return conflict(`request is ${job.status}, not processing: the lease is stale`);
  if (token !== null && token !== job.lease_token) return conflict('lease token does not match the current lease (stale or foreign)');

  const { lease_token: _omit, ...result } = body;
  const base: Job = {
    ...job,
    result,
    updated_at: now,
    lease_token: null,
    lease_expires_at: null,
    cancel_requested: false,
    unfenced: token === null,
    last_completion: { lease_token: token, digest },
  };
  if (body.success) {
    return {
      ok: true,
      replay: false,
      job: {
        ...base,
        status: 'completed',
        seg_instance_id: body.seg_instance_id ?? null,
        error: null,
        completed_at: now,
        progress: { stage: 'done', percent: 100, updated_at: now },
      },
    };
  }
  const error = body.error?.trim() || 'the agent reported a failure without a reason';
  if (body.retryable && job.attempts < job.max_attempts) {
    const runAt = now + backoffMs(policy, job.attempts, random);
    return {
      ok: true,
      replay: false,
      job: { ...base, status: 'pending', error, run_at: runAt, expires_at: runAt + policy.pendingTtlMs, progress: null },
    };
  }
  const suffix = body.retryable ? ` (after ${job.attempts} of ${job.max_attempts} attempts)` : '';
  return { ok: true, replay: false, job: { ...base, status: 'failed', error: error + suffix, completed_at: now } };
}

export function cancel(job: Job, now: number): Outcome<{ job: Job; changed: boolean }> {
  if (job.status === 'cancelled') return { ok: true, job, changed: false };
  if (job.status === 'completed' || job.status === 'failed') return conflict(`request is already ${job.status}`);
  return {
    ok: true,
    changed: true,
    job: {
      ...job,
      status: 'cancelled',
      // The lease stays so the agent's next heartbeat is answered `cancel: true` rather than 409.
      cancel_requested: job.status === 'processing',
      error: 'cancelled by a user',
      completed_at: now,
      updated_at: now,
    },
  };
}

export function retry(job: Job, now: number, policy: JobPolicy): Outcome<{ job: Job }> {
  if (job.status === 'completed') return conflict('request is completed; start it again with force: true to run it again');
  if (job.status === 'pending' || job.status === 'processing') return conflict(`request is ${job.status} already`);
  return { ok: true, job: { ...job, ...freshRun(now, policy), lease_acked: true, unacked_claims: 0 } };
}
