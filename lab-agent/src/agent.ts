/**
 * The agent: flushes the outbox, then claims jobs while a slot is free and runs each one; stops
 * gracefully on request (no more claims, running jobs get a grace period, then are stopped and
 * reported as retryable failures) and at once when the token is refused.
 */
import type { ClaimedJob } from '@lab-relay/protocol';
import type { ApiClient } from './api-client.js';
import { flushOutbox } from './delivery.js';
import { AuthError, ConfigError, JobAbort, errorMessage } from './errors.js';
import { RunningJob } from './job-runner.js';
import type { Logger } from './log.js';
import type { Outbox } from './outbox.js';
import { Poller } from './poller.js';
import type { Runner } from './runners/types.js';
import { sleep } from './sleep.js';

export interface AgentOptions {
  client: Pick<ApiClient, 'claim' | 'heartbeat' | 'complete'>;
  runner: Runner;
  outbox: Outbox;
  log: Logger;
  agentId: string;
  slots: number;
  pollWaitS: number;
  workRoot: string;
  jobTimeoutMs: number;
  graceMs: number;
  maxBackoffMs: number;
}

/** After the grace period, how long stopped jobs' results may take to reach the API before the agent exits anyway. */
const DELIVERY_GRACE_MS = 10_000;

export const EXIT_OK = 0;
export const EXIT_AUTH = 3;

export class Agent {
  private readonly claiming = new AbortController();
  private readonly delivering = new AbortController();
  private readonly jobs = new Set<RunningJob>();
  private fatal: AuthError | null = null;
  private wake: (() => void) | null = null;
  private stopRequested = false;

  constructor(private readonly o: AgentOptions) {}

  get activeJobs(): number {
    return this.jobs.size;
  }

  /** Runs until stopped; resolves the exit code (0, or EXIT_AUTH when the token was refused). */
  async run(): Promise<number> {
    const { log } = this.o;
    await this.o.outbox.init();
    try {
      await this.o.runner.init?.();
    } catch (err) {
      // A model that does not load is a setup problem: report it like a configuration error (exit 2).
      throw new ConfigError(`The ${this.o.runner.name} runner could not start: ${errorMessage(err)}`);
    }
    const deliveryDeps = { client: this.o.client, outbox: this.o.outbox, log, maxBackoffMs: this.o.maxBackoffMs };
    try {
      await flushOutbox(deliveryDeps, AbortSignal.any([this.claiming.signal, this.delivering.signal]));
    } catch (err) {
      if (err instanceof AuthError) this.onAuthError(err);
      else throw err;
    }
    const poller = new Poller({ client: this.o.client, log, waitS: this.o.pollWaitS, maxBackoffMs: this.o.maxBackoffMs });
    if (!this.claiming.signal.aborted) log.log('INFO', `waiting for jobs (${this.o.slots} slot${this.o.slots > 1 ? 's' : ''})`, { event: 'ready' });
    while (!this.claiming.signal.aborted) {
      if (this.jobs.size >= this.o.slots) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if (this.claiming.signal.aborted) resolve();
        });
        this.wake = null;
        continue;
      }
      let job;
      try {
        job = await poller.next(this.claiming.signal);
      } catch (err) {
        if (err instanceof AuthError) this.onAuthError(err);
        else throw err;
        break;
      }
      if (!job) continue;
      if (this.claiming.signal.aborted) {
        // Claimed in the same instant as the stop: run it anyway rather than leave it to lease expiry.
        log.log('INFO', `claimed ${job.id} while stopping; running it within the grace period`);
      }
      this.startJob(job);
    }
    await this.drain();
    await this.o.runner.close?.().catch((err: unknown) => log.log('WARNING', `runner close failed: ${errorMessage(err)}`));
    if (this.fatal) {
      log.log('ERROR', `agent stopped: ${this.fatal.message}`, { event: 'stopped', status: this.fatal.status });
      return EXIT_AUTH;
    }
    log.log('INFO', 'agent stopped', { event: 'stopped' });
    return EXIT_OK;
  }

  /** First signal: claim nothing more and let running jobs finish within the grace period. */
  stop(): void {
    if (this.stopRequested) return;
    this.stopRequested = true;
    this.claiming.abort();
    this.wake?.();
  }

  private startJob(job: ClaimedJob): void {
    const running = new RunningJob(job, {
      client: this.o.client,
      runner: this.o.runner,
      outbox: this.o.outbox,
      log: this.o.log,
      agentId: this.o.agentId,
      workRoot: this.o.workRoot,
      jobTimeoutMs: this.o.jobTimeoutMs,
      maxBackoffMs: this.o.maxBackoffMs,
      deliverySignal: this.delivering.signal,
      onAuthError: (err) => this.onAuthError(err),
    });
    this.jobs.add(running);
    void running.done.then(() => {
      this.jobs.delete(running);
      this.wake?.();
    });
  }

  private onAuthError(err: AuthError): void {
    if (this.fatal) return;
    this.fatal = err;
    this.stop();
    // Nothing more will be accepted with this token: stop work now and keep results in the outbox.
    this.delivering.abort();
    for (const j of this.jobs) j.abort(new JobAbort('shutdown', 'the agent token was refused'));
  }

  private async drain(): Promise<void> {
    if (this.jobs.size === 0) return;
    const { log } = this.o;
    log.log('INFO', `stopping: waiting up to ${this.o.graceMs / 1000} s for ${this.jobs.size} running job(s)`, { event: 'draining' });
    const all = () => Promise.all([...this.jobs].map((j) => j.done));
    const graceOver = new AbortController();
    const finished = all().then(() => graceOver.abort());
    await sleep(this.o.graceMs, graceOver.signal);
    if (this.jobs.size > 0) {
      log.log('WARNING', `grace period over: stopping ${this.jobs.size} job(s); they are reported as retryable failures`, { event: 'grace-over' });
      for (const j of this.jobs) j.abort(new JobAbort('shutdown', `the agent was shut down before the job finished (grace period ${this.o.graceMs / 1000} s)`));
      const deliveryOver = setTimeout(() => this.delivering.abort(), DELIVERY_GRACE_MS);
      await finished;
      clearTimeout(deliveryOver);
    }
  }
}
