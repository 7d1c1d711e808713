/**
 * Keeps one job's lease alive at the cadence the server asks for, carrying the latest progress.
 * A `cancel` answer or a 409/404 (the lease is someone else's now) stops the job's work through
 * `onStop`; network failures are logged and retried at the next beat, since the server accepts a
 * late heartbeat as long as nobody reclaimed the job.
 */
import type { ClaimedJob, Progress } from '@lab-relay/protocol';
import type { ApiClient } from './api-client.js';
import { Backoff } from './backoff.js';
import { ApiError, AuthError, JobAbort, errorMessage } from './errors.js';
import type { Logger } from './log.js';
import { sleep } from './sleep.js';

export type FirstBeat = 'ok' | JobAbort;

export interface HeartbeatDeps {
  client: Pick<ApiClient, 'heartbeat'>;
  log: Logger;
  /** Called once when the job must stop (cancelled or lease lost). */
  onStop(reason: JobAbort): void;
  /** Called when the token is refused mid-job: the agent as a whole must stop. */
  onAuthError(err: AuthError): void;
  now?: () => number;
}

export class Heartbeater {
  private progress: Progress = { stage: 'claimed', percent: 0 };
  private intervalMs: number;
  private leaseExpiresAt: number;
  private readonly stopped = new AbortController();
  private loop: Promise<void> | null = null;
  private ended = false;
  private readonly now: () => number;

  constructor(
    private readonly job: ClaimedJob,
    private readonly deps: HeartbeatDeps,
  ) {
    this.intervalMs = job.heartbeat_interval_s * 1000;
    this.leaseExpiresAt = Date.parse(job.lease_expires_at);
    this.now = deps.now ?? Date.now;
  }

  setProgress(stage: string, percent: number): void {
    this.progress = { stage: stage.slice(0, 64) || 'running', percent: Math.max(0, Math.min(100, percent)) };
  }

  /**
   * The first heartbeat, before any heavy work (as GitHub's runner renews its lock before starting):
   * it proves the lease is still ours. Retried with backoff while the lease lasts.
   */
  async start(): Promise<FirstBeat> {
    const backoff = new Backoff({ baseMs: 250, capMs: Math.max(500, this.intervalMs) });
    for (;;) {
      const r = await this.beat();
      if (r === 'ok') break;
      if (r instanceof JobAbort) return r;
      if (this.now() + 250 >= this.leaseExpiresAt) return new JobAbort('lease-lost', 'the first heartbeat could not reach the API before the lease ran out');
      await sleep(Math.min(backoff.next(), Math.max(0, this.leaseExpiresAt - this.now() - 250)), this.stopped.signal);
      if (this.stopped.signal.aborted) return new JobAbort('shutdown', 'stopped before the first heartbeat');
    }
    this.loop = this.run();
    return 'ok';
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped.signal.aborted && !this.ended) {
      await sleep(this.intervalMs, this.stopped.signal);
      if (this.stopped.signal.aborted) return;
      const r = await this.beat();
      if (r instanceof JobAbort) {
        this.ended = true;
        this.deps.onStop(r);
      }
    }
  }

  /** One heartbeat: 'ok', a reason to stop, or 'retry' after a transient failure. */
  private async beat(): Promise<'ok' | 'retry' | JobAbort> {
    try {
      const res = await this.deps.client.heartbeat(this.job.id, { lease_token: this.job.lease_token, progress: this.progress }, this.stopped.signal);
      this.intervalMs = res.heartbeat_interval_s * 1000;
      this.leaseExpiresAt = Date.parse(res.lease_expires_at);
      if (res.cancel) return new JobAbort('cancel', 'the request was cancelled');
      return 'ok';
    } catch (err) {
      if (this.stopped.signal.aborted) return 'retry';
      if (err instanceof AuthError) {
        this.deps.onAuthError(err);
        return new JobAbort('shutdown', err.message);
      }
      if (err instanceof ApiError && (err.status === 409 || err.status === 404)) {
        return new JobAbort('lease-lost', `the lease is no longer ours: ${err.message}`);
      }
      this.deps.log.log('WARNING', `heartbeat failed (${errorMessage(err)}); retrying`, { event: 'heartbeat-retry' });
      return 'retry';
    }
  }
}
