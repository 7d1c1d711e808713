import { createHash } from 'node:crypto';
import type {
  ClaimedJob,
  CompleteRequest,
  CompleteResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  JobStatus,
  JobView,
  MetricsResponse,
  SignedTarget,
  StartResponse,
} from '@lab-relay/protocol';
import { toView, type Job, type Versioned } from '../jobs/job.js';
import { newLeaseToken, newRequestId } from '../jobs/ids.js';
import type { JobPolicy } from '../jobs/policy.js';
import * as T from '../jobs/transitions.js';
import type { Logger } from '../log.js';
import type { JobStore } from '../stores/job-store.js';
import { downloadLinks, uploadTargets, type OutputUrls } from './outputs.js';
import { QueueWaiter } from './queue-waiter.js';

export interface ServiceDeps {
  store: JobStore;
  policy: JobPolicy;
  log: Logger;
  agentSeenWindowMs: number;
  now?: () => number;
  random?: () => number;
  newId?: () => string;
  newToken?: () => string;
  /** Signed URLs for outputs; absent when the deployment has no blob store. */
  outputs?: OutputUrls | null;
}

/** A refusal the HTTP layer turns into a JSON error with this status. */
export class ServiceError extends Error {
  constructor(
    readonly status: 404 | 409 | 413 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}

const CAS_ROUNDS = 8;
const MAX_RESULT_BYTES = 512 * 1024;
const CANDIDATE_PAGE = 16;
/** Picks spread over this many candidates once claimers collide (see CONTEXT: contention). */
const SPREAD = 8;
/** Even with a store watch, re-look this often: a lease running out raises no event. */
const RECHECK_MS = 5000;
const SWEEP_EVERY_MS = 5000;
const AGENT_TOUCH_EVERY_MS = 5000;

/**
 * The job API's behaviour over any store: start, claim (with long-poll), heartbeat, complete,
 * cancel, retry, and the read side. State changes are jobs/transitions.ts applied with
 * compare-and-set, retried when another instance or request changed the job first.
 */
export class JobService {
  readonly waiter = new QueueWaiter();
  private readonly store: JobStore;
  private readonly policy: JobPolicy;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly newId: () => string;
  private readonly newToken: () => string;
  private readonly agentSeenWindowMs: number;
  private readonly outputs: OutputUrls | null;
  private unwatch: (() => void) | null = null;
  private closed = false;
  private claimsInFlight = 0;
  private lastSweep = 0;
  private readonly agentTouched = new Map<string, { at: number; current: string | null }>();

  constructor(deps: ServiceDeps) {
    this.store = deps.store;
    this.policy = deps.policy;
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.newId = deps.newId ?? (() => newRequestId(this.now()));
    this.newToken = deps.newToken ?? newLeaseToken;
    this.agentSeenWindowMs = deps.agentSeenWindowMs;
    this.outputs = deps.outputs ?? null;
  }

  /** Subscribes to the store's queue signal lazily: only instances that serve long-polls listen. */
  private ensureWatch(): void {
    if (this.unwatch || !this.store.watchQueue) return;
    this.unwatch = this.store.watchQueue(() => this.waiter.wake());
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unwatch?.();
    this.unwatch = null;
    this.waiter.wake();
  }

  // ---- client side -------------------------------------------------------------------------

  async start(
    seriesId: string,
    input: { series_ids: string[]; priority?: number | undefined; force?: boolean | undefined; max_attempts?: number | undefined },
  ): Promise<{ created: boolean; body: StartResponse }> {
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const existing = await this.store.currentForSeries(seriesId);
      const d = T.decideStart(existing?.job ?? null, input);
      if (d.kind === 'conflict') throw new ServiceError(409, d.error);
      if (d.kind === 'existing' && existing) {
        return {
          created: false,
          body: {
            success: true,
            request_id: existing.job.id,
            status: existing.job.status,
            message: `series ${seriesId} already has request ${existing.job.id} (${existing.job.status}); returned it`,
            existing: true,
          },
        };
      }
      const now = this.now();
      const job = T.newJob({ id: this.newId(), series_id: seriesId, ...input }, now, this.policy);
      const replaced = d.kind === 'create' && d.supersede && existing ? T.supersede(existing.job, job.id, now) : undefined;
      if (await this.store.createForSeries(job, existing, replaced)) {
        this.waiter.wake();
        this.log.log('INFO', 'request queued', { request_id: job.id, priority: job.priority, superseded: replaced?.id });
        return {
          created: true,
          body: { success: true, request_id: job.id, status: job.status, message: 'Inference request queued', existing: false },
        };
      }
    }
    throw new ServiceError(409, `series ${seriesId} is being started concurrently; try again`);
  }

  async status(seriesId: string): Promise<JobView | null> {
    await this.maybeSweep();
    const cur = await this.store.currentForSeries(seriesId);
    if (!cur) return null;
    const view = toView(cur.job);
    const downloads = this.outputs ? await downloadLinks(this.outputs, cur.job) : undefined;
    return downloads ? { ...view, downloads } : view;
  }

  async cancel(id: string): Promise<JobView> {
    return this.mutate(id, (job) => {
      const r = T.cancel(job, this.now());
      return r.ok ? { job: r.job, changed: r.changed } : r;
    });
  }

  async retry(id: string): Promise<JobView> {
    const view = await this.mutate(id, (job) => {
      const r = T.retry(job, this.now(), this.policy);
      return r.ok ? { job: r.job, changed: true } : r;
    });
    this.waiter.wake();
    return view;
  }

  async list(q: { status?: JobStatus | undefined; limit: number; cursor?: string | undefined }) {
    await this.maybeSweep();
    const page = await this.store.list(q);
    return { items: page.items.map(toView), next_cursor: page.next_cursor };
  }

  async metrics(): Promise<MetricsResponse> {
    await this.maybeSweep();
    const now = this.now();
    const [counts, oldest, agents] = await Promise.all([
      this.store.counts(),
      this.store.oldestPending(),
      this.store.agentsSince(now - this.agentSeenWindowMs),
    ]);
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return {
      counts,
      queue_depth: counts.pending,
      oldest_pending_age_s: oldest ? Math.max(0, (now - oldest.created_at) / 1000) : null,
      agents: agents.map((a) => ({
        agent_id: a.agent_id,
        last_seen_at: iso(a.last_seen_at)!,
        last_heartbeat_at: iso(a.last_heartbeat_at),
        current_request_id: a.current_request_id,
      })),
      now: new Date(now).toISOString(),
    };
  }

  get storeKind(): string {
    return this.store.kind;
  }

  async health(): Promise<void> {
    await this.store.ping();
  }

  // ---- agent side --------------------------------------------------------------------------

  /**
   * Claims one job, waiting up to `waitMs` for one to be queued. Returns null when none came.
   */
  async claim(agentId: string, waitMs: number, signal?: AbortSignal, ack = false): Promise<ClaimedJob | null> {
    this.ensureWatch();
    const deadline = this.now() + waitMs;
    await this.maybeSweep();
    for (;;) {
      // Never claim for a client that has gone: the job would sit unseen until its lease ran out.
      if (signal?.aborted || this.closed) return null;
      const gen = this.waiter.generation;
      const r = await this.claimOnce(agentId, ack);
      if (r.job) {
        const view = await this.claimedView(r.job);
        if (signal?.aborted) {
          await this.release(r.job);
          return null;
        }
        await this.touchAgent(agentId, { current: r.job.id });
        return view;
      }
      const remaining = deadline - this.now();
      if (remaining <= 0 || signal?.aborted || this.closed) {
        await this.touchAgent(agentId, { current: null });
        return null;
      }
      if (r.contended) continue;
      const untilDue = r.nextDueAt !== undefined ? Math.max(0, r.nextDueAt - this.now()) : Infinity;
      await this.waiter.wait(Math.min(remaining, untilDue, RECHECK_MS), gen, signal);
    }
  }

  private async claimedView(job: Job): Promise<ClaimedJob> {
    return {
      ...(this.outputs ? { uploads: await uploadTargets(this.outputs, job) } : {}),
      id: job.id,
      series_id: job.series_id,
      series_ids: job.series_ids,
      lease_token: job.lease_token!,
      lease_expires_at: new Date(job.lease_expires_at!).toISOString(),
      heartbeat_interval_s: this.policy.heartbeatIntervalS,
      attempt: job.attempts,
      max_attempts: job.max_attempts,
      priority: job.priority,
    };
  }

  private async release(job: Job): Promise<void> {
    try {
      await this.mutate(job.id, (cur) => {
        const next = T.release(cur, job.lease_token!, this.now());
        return next ? { job: next, changed: true } : { job: cur, changed: false };
      });
      this.waiter.wake();
      this.log.log('INFO', 'claim released: the agent left before receiving it', { request_id: job.id });
    } catch (err) {
      // The lease still bounds how long the job can wait.
      this.log.log('WARNING', 'could not release an undelivered claim', { request_id: job.id, error: (err as Error).message });
    }
  }

  private async claimOnce(agentId: string, ack: boolean): Promise<{ job?: Job; nextDueAt?: number; contended?: boolean }> {
    // Concurrent claims in this instance start on different candidates instead of all on the first.
    const slot = this.claimsInFlight++;
    try {
      return await this.claimRounds(agentId, slot, ack);
    } finally {
      this.claimsInFlight--;
    }
  }

  private async claimRounds(agentId: string, slot: number, ack: boolean): Promise<{ job?: Job; nextDueAt?: number; contended?: boolean }> {
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const now = this.now();
      const cands = await this.store.claimCandidates(now, CANDIDATE_PAGE);
      let nextDueAt: number | undefined;
      const due: Versioned[] = [];
      for (const c of cands) {
        const j = c.job;
        if (j.status === 'processing' || j.run_at <= now || j.expires_at <= now) due.push(c);
        else nextDueAt = Math.min(nextDueAt ?? Infinity, j.run_at);
      }
      if (due.length === 0) return nextDueAt === undefined ? {} : { nextDueAt };
      // Strict order (priority, then oldest) for a lone claimer; after a collision, spread out.
      const pick = round === 0 ? due[Math.min(slot, due.length - 1)]! : due[Math.floor(this.random() * Math.min(due.length, SPREAD))]!;
      const d = T.claim(pick.job, now, this.policy, { token: this.newToken(), agentId, ack });
      if (d.kind === 'skip') continue;
      const written = await this.store.update(d.job, pick.version);
      if (!written) continue;
      if (d.kind === 'failed') {
        this.log.log('WARNING', 'request failed while claiming', { request_id: d.job.id, error: d.job.error });
        round--; // not a collision: look again at once
        continue;
      }
      this.log.log('INFO', 'request claimed', { request_id: d.job.id, agent_id: agentId, attempt: d.job.attempts });
      return { job: d.job };
    }
    return { contended: true };
  }

  /** Fresh upload URLs for the current lease (the ones handed out with the claim may have expired). */
  async uploads(id: string, leaseToken: string): Promise<Record<string, SignedTarget>> {
    if (!this.outputs) throw new ServiceError(409, 'this deployment has no blob store (BLOB_STORE=none)');
    const cur = await this.store.get(id);
    if (!cur) throw new ServiceError(404, 'Request not found');
    if (cur.job.status !== 'processing' || cur.job.lease_token !== leaseToken) {
      throw new ServiceError(409, 'lease is no longer held by this agent');
    }
    return uploadTargets(this.outputs, cur.job);
  }

  async heartbeat(id: string, agentId: string, body: HeartbeatRequest): Promise<HeartbeatResponse> {
    let cancel = false;
    let leaseExpiresAt = 0;
    await this.mutate(id, (job) => {
      const r = T.heartbeat(job, body.lease_token, body.progress, this.now(), this.policy);
      if (!r.ok) return r;
      cancel = r.cancel;
      leaseExpiresAt = r.job.lease_expires_at ?? this.now();
      return { job: r.job, changed: r.changed };
    });
    await this.touchAgent(agentId, { current: cancel ? null : id, heartbeat: true });
    return {
      success: true,
      cancel,
      lease_expires_at: new Date(leaseExpiresAt).toISOString(),
      heartbeat_interval_s: this.policy.heartbeatIntervalS,
    };
  }

  async complete(id: string, agentId: string, body: CompleteRequest): Promise<CompleteResponse> {
    const { lease_token: _t, ...rest } = body;
    const canonical = canonicalJson(rest);
    // A Firestore document holds at most 1 MiB with everything else in it: refuse before the store would.
    if (Buffer.byteLength(canonical) > MAX_RESULT_BYTES) {
      throw new ServiceError(413, `result larger than ${MAX_RESULT_BYTES / 1024} KiB; put large outputs in files (artifacts/outputs)`);
    }
    const digest = createHash('sha256').update(canonical).digest('hex');
    let replay = false;
    const view = await this.mutate(id, (job) => {
      const r = T.complete(job, body, digest, this.now(), this.policy, this.random);
      if (!r.ok) return r;
      replay = r.replay;
      return { job: r.job, changed: !r.replay };
    });
    if (!replay) {
      this.log.log(view.status === 'completed' ? 'INFO' : 'WARNING', `request ${view.status === 'pending' ? 'requeued' : view.status}`, {
        request_id: id,
        agent_id: agentId,
        attempt: view.attempts,
        unfenced: view.unfenced || undefined,
        error: view.error ?? undefined,
      });
      if (view.status === 'pending') this.waiter.wake();
    }
    await this.touchAgent(agentId, { current: null });
    return { success: true, status: view.status as CompleteResponse['status'], replay };
  }

  // ---- shared mechanics --------------------------------------------------------------------

  /** get -> transition -> compare-and-set, retried when the job changed underneath. */
  private async mutate(id: string, fn: (job: Job) => { job: Job; changed: boolean } | T.Rejection): Promise<JobView> {
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const cur = await this.store.get(id);
      if (!cur) throw new ServiceError(404, 'Request not found');
      const r = fn(cur.job);
      if ('ok' in r && r.ok === false) throw new ServiceError(r.code, r.error);
      const next = r as { job: Job; changed: boolean };
      if (!next.changed) return toView(next.job);
      const written = await this.store.update(next.job, cur.version);
      if (written) return toView(written.job);
    }
    throw new ServiceError(409, 'request is changing concurrently; try again');
  }

  /** Expiry runs as a side effect of ordinary traffic, at most every few seconds per instance. */
  private async maybeSweep(): Promise<void> {
    const now = this.now();
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    try {
      for (const c of await this.store.sweepCandidates(now, 100)) {
        const next = T.sweep(c.job, now);
        if (!next) continue;
        if (await this.store.update(next, c.version)) {
          this.log.log('WARNING', `request ${next.status === 'failed' ? 'failed' : 'requeued'} by expiry`, {
            request_id: next.id,
            error: next.error,
          });
          if (next.status === 'pending') this.waiter.wake();
        }
      }
    } catch (err) {
      this.log.log('ERROR', 'sweep failed', { error: (err as Error).message });
    }
  }

  private async touchAgent(agentId: string, s: { current: string | null; heartbeat?: boolean }): Promise<void> {
    const now = this.now();
    const prev = this.agentTouched.get(agentId);
    // One write per agent every few seconds at most (Firestore: ~1 sustained write/s per document,
    // and a write per claim would halve claim throughput), so current_request_id may lag by that much.
    // Heartbeats come every lease/4 per job and always record.
    if (!s.heartbeat && prev && now - prev.at < AGENT_TOUCH_EVERY_MS) return;
    this.agentTouched.set(agentId, { at: now, current: s.current });
    try {
      await this.store.touchAgent({
        agent_id: agentId,
        last_seen_at: now,
        last_heartbeat_at: s.heartbeat ? now : null,
        current_request_id: s.current,
      });
    } catch (err) {
      // Agent bookkeeping must never fail a claim or a completion.
      this.log.log('WARNING', 'could not record agent activity', { agent_id: agentId, error: (err as Error).message });
    }
  }
}

/** JSON with sorted keys, so the same completion always has the same digest. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return '[' + v.map(canonicalJson).join(',') + ']';
  if (v && typeof v === 'object') {
    return (
      '{' +
      Object.keys(v)
        .sort()
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .map((k) => JSON.stringify(k) + ':' + canonicalJson((v as Record<string, unknown>)[k]))
        .join(',') +
      '}'
    );
  }
  return JSON.stringify(v);
}
