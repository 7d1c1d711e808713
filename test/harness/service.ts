import { policyFrom, type JobPolicy } from '../../functions/src/jobs/policy.js';
import { silentLogger } from '../../functions/src/log.js';
import { JobService } from '../../functions/src/service/job-service.js';
import type { JobStore } from '../../functions/src/stores/job-store.js';

export const TEST_POLICY: JobPolicy = policyFrom({
  LEASE_SECONDS: 60,
  PENDING_TTL_SECONDS: 3600,
  MAX_ATTEMPTS: 3,
  RETRY_BASE_SECONDS: 10,
  RETRY_MAX_SECONDS: 600,
});

/** A clock the test moves by hand, so leases, backoff and TTL are tested without sleeping. */
export class ManualClock {
  constructor(public t = Date.UTC(2026, 0, 20, 17, 0, 0)) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export function serviceFor(store: JobStore, opts: { clock?: ManualClock; random?: () => number; policy?: JobPolicy } = {}) {
  return new JobService({
    store,
    policy: opts.policy ?? TEST_POLICY,
    log: silentLogger,
    agentSeenWindowMs: 300_000,
    ...(opts.clock ? { now: opts.clock.now } : {}),
    random: opts.random ?? (() => 0.5),
  });
}

export const SERIES4 = ['t1-x', 't1c-x', 't2-x', 'flair-x'];
