/** The knobs of the job state machine, from the API configuration. */
export interface JobPolicy {
  leaseMs: number;
  /** How long a claim made with `ack=1` waits for the agent's first heartbeat. */
  ackMs: number;
  heartbeatIntervalS: number;
  pendingTtlMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

export function policyFrom(cfg: {
  LEASE_SECONDS: number;
  PENDING_TTL_SECONDS: number;
  MAX_ATTEMPTS: number;
  RETRY_BASE_SECONDS: number;
  RETRY_MAX_SECONDS: number;
}): JobPolicy {
  return {
    leaseMs: cfg.LEASE_SECONDS * 1000,
    // Agents heartbeat right after a claim; 15 s covers a slow network or a cold function start.
    ackMs: Math.min(cfg.LEASE_SECONDS * 1000, 15_000),
    // A quarter of the lease: three heartbeats may be lost before another agent can take the job.
    heartbeatIntervalS: Math.max(1, Math.round((cfg.LEASE_SECONDS / 4) * 10) / 10),
    pendingTtlMs: cfg.PENDING_TTL_SECONDS * 1000,
    maxAttempts: cfg.MAX_ATTEMPTS,
    retryBaseMs: cfg.RETRY_BASE_SECONDS * 1000,
    retryMaxMs: cfg.RETRY_MAX_SECONDS * 1000,
  };
}

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries of jobs
 * that failed together (an image source down) spread out instead of returning in one wave.
 */
export function backoffMs(policy: JobPolicy, attempt: number, random: () => number): number {
  const exp = Math.min(policy.retryMaxMs, policy.retryBaseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}
