/**
 * One claimed job from start to acknowledged result: first heartbeat, private work folder, the runner
 * under an AbortSignal (cancel, lost lease, timeout, shutdown), the result into the outbox, delivery,
 * and the work folder removed however it ended.
 */
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CompleteRequest, type ClaimedJob } from '@lab-relay/protocol';
import type { ApiClient } from './api-client.js';
import { deliver, type DeliveryOutcome } from './delivery.js';
import { AuthError, JobAbort, RunnerFailure, errorMessage } from './errors.js';
import { Heartbeater } from './heartbeat.js';
import type { Logger } from './log.js';
import type { Outbox } from './outbox.js';
import type { Runner, RunnerResult } from './runners/types.js';
import { uploadOutputs } from './sinks/signed-upload.js';

export interface JobRunnerDeps {
  client: Pick<ApiClient, 'heartbeat' | 'complete'> & Partial<Pick<ApiClient, 'uploads'>>;
  runner: Runner;
  outbox: Outbox;
  log: Logger;
  agentId: string;
  workRoot: string;
  jobTimeoutMs: number;
  maxBackoffMs: number;
  /** Aborted when deliveries must give up for now (the agent is exiting); results stay in the outbox. */
  deliverySignal: AbortSignal;
  onAuthError(err: AuthError): void;
}

/** How long a runner may ignore an abort before the agent stops waiting for it. */
const RUNNER_ABORT_GRACE_MS = 15_000;

export type JobEnd = 'delivered' | 'refused' | 'rejected' | 'stopped' | 'cancelled' | 'lease-lost';

export class RunningJob {
  readonly controller = new AbortController();
  readonly startedAt = Date.now();
  readonly done: Promise<JobEnd>;
  private readonly log: Logger;
  private hb: Heartbeater | null = null;

  constructor(
    readonly job: ClaimedJob,
    private readonly deps: JobRunnerDeps,
  ) {
    this.log = deps.log.child({ job_id: job.id });
    this.done = this.execute().catch(async (err) => {
      // Stop the heartbeats too, or the lease would be kept alive for a job nobody works on.
      await this.hb?.stop();
      this.log.log('ERROR', `job handling failed unexpectedly: ${errorMessage(err)}`);
      return 'stopped' as const;
    });
  }

  /** Stops the job's work; the reason decides what is reported (see `execute`). */
  abort(reason: JobAbort): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  private async execute(): Promise<JobEnd> {
    const { job, deps, log } = this;
    log.log('INFO', `claimed request ${job.id} for series ${job.series_id} (attempt ${job.attempt} of ${job.max_attempts})`, {
      event: 'claimed',
      series_id: job.series_id,
      attempt: job.attempt,
    });
    const hb = (this.hb = new Heartbeater(job, {
      client: deps.client,
      log,
      onStop: (reason) => this.abort(reason),
      onAuthError: deps.onAuthError,
    }));
    const first = await hb.start();
    if (first !== 'ok') {
      log.log('WARNING', `not starting the job: ${first.message}`, { event: 'skipped' });
      return first.kind === 'cancel' ? 'cancelled' : 'lease-lost';
    }

    let workDir: string | undefined;
    let result: RunnerResult | null;
    const timer = deps.jobTimeoutMs > 0 ? setTimeout(() => this.abort(new JobAbort('timeout', `the job ran longer than the job timeout (${deps.jobTimeoutMs / 1000} s) and was stopped`)), deps.jobTimeoutMs) : undefined;
    let lastShown = { stage: '', percent: -100 };
    try {
      try {
        await mkdir(deps.workRoot, { recursive: true });
        workDir = await mkdtemp(join(deps.workRoot, `job-${job.id}-`));
      } catch (err) {
        // A full or unwritable disk here says nothing about the job: another agent may well run it.
        throw new RunnerFailure(`could not create the job's work folder under ${deps.workRoot}: ${errorMessage(err)}`, true);
      }
      const ctx = {
        id: job.id,
        series_id: job.series_id,
        series_ids: [...job.series_ids],
        ...(job.uploads ? { uploads: job.uploads } : {}),
        workDir,
        signal: this.controller.signal,
        progress: (stage: string, percent: number) => {
          hb.setProgress(stage, percent);
          // The view shows a stage change, or a step of 10 points, not every call.
          if (stage !== lastShown.stage || Math.abs(percent - lastShown.percent) >= 10 || (percent >= 100 && lastShown.percent < 100)) {
            lastShown = { stage, percent };
            log.log('INFO', 'progress', { event: 'progress', stage, percent });
          }
        },
        log: (severity: 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR', message: string, fields?: Record<string, unknown>) => log.log(severity, message, fields),
      };
      ctx.progress('running', 0);
      result = await this.runRunner(ctx);
      if (result?.artifacts) result = await this.uploadArtifacts(result, ctx);
    } catch (err) {
      result = { success: false, retryable: err instanceof RunnerFailure && err.retryable, error: errorMessage(err) };
    } finally {
      clearTimeout(timer);
      if (workDir) await rm(workDir, { recursive: true, force: true }).catch((err) => log.log('WARNING', `could not remove ${workDir}: ${errorMessage(err)}`));
    }

    if (result === null) {
      // Cancelled or lease lost: the API wants nothing more from this attempt.
      await hb.stop();
      const reason = this.controller.signal.reason as JobAbort;
      log.log('WARNING', `job stopped: ${reason.message}; nothing reported`, { event: reason.kind });
      return reason.kind === 'cancel' ? 'cancelled' : 'lease-lost';
    }

    const elapsed = (Date.now() - this.startedAt) / 1000;
    log.log(result.success ? 'INFO' : 'WARNING', result.success ? `job finished in ${elapsed.toFixed(1)} s` : `job failed after ${elapsed.toFixed(1)} s: ${result.error}`, {
      event: result.success ? 'finished' : 'failed',
      retryable: result.success ? undefined : (result.retryable ?? false),
    });
    // Heartbeats go on until the API has the result, so a slow delivery does not lose the lease.
    let outcome: DeliveryOutcome;
    try {
      const entry = {
        v: 1 as const,
        request_id: job.id,
        body: { ...result, lease_token: job.lease_token },
        written_at: new Date().toISOString(),
        agent_id: deps.agentId,
      };
      let file: string;
      try {
        file = await deps.outbox.put(entry);
      } catch (err) {
        // No durable copy (disk full, folder gone): still try to hand the result over rather than drop it.
        log.log('ERROR', `could not write the result to the outbox (${errorMessage(err)}); sending it without a durable copy`);
        return await this.sendOnce(entry.body);
      }
      outcome = await deliver({ file, entry }, { client: deps.client, outbox: deps.outbox, log: deps.log, maxBackoffMs: deps.maxBackoffMs }, deps.deliverySignal);
    } catch (err) {
      if (err instanceof AuthError) deps.onAuthError(err);
      else log.log('ERROR', `could not deliver the result: ${errorMessage(err)}`);
      outcome = 'stopped';
    } finally {
      await hb.stop();
    }
    return outcome;
  }

  /**
   * Puts the runner's output files behind the claim's signed URLs and lists them under `outputs`.
   * A failed upload fails the attempt (retryably when the storage was unreachable).
   */
  private async uploadArtifacts(result: RunnerResult, ctx: { signal: AbortSignal; progress(stage: string, percent: number): void }): Promise<RunnerResult | null> {
    const { artifacts, ...rest } = result;
    const targets = this.job.uploads;
    if (!artifacts || !targets || !result.success) return rest;
    ctx.progress('upload', 0);
    const client = this.deps.client;
    const t0 = performance.now();
    try {
      const outputs = await uploadOutputs(artifacts, targets, {
        signal: ctx.signal,
        ...(client.uploads ? { refresh: () => client.uploads!(this.job.id, this.job.lease_token, ctx.signal) } : {}),
      });
      ctx.progress('upload', 100);
      const timings = { ...rest.timings, upload: Math.round(performance.now() - t0) / 1000 };
      return { ...rest, timings, outputs };
    } catch (err) {
      if (ctx.signal.aborted) {
        const reason = ctx.signal.reason as JobAbort;
        if (reason.kind === 'cancel' || reason.kind === 'lease-lost') return null;
        return { success: false, retryable: true, error: reason.message };
      }
      return { success: false, retryable: err instanceof RunnerFailure ? err.retryable : true, error: truncate(errorMessage(err)) };
    }
  }

  /** One direct attempt to deliver, for when the outbox cannot be written. */
  private async sendOnce(body: CompleteRequest): Promise<JobEnd> {
    try {
      await this.deps.client.complete(this.job.id, body, this.deps.deliverySignal);
      this.log.log('INFO', 'result delivered without the outbox', { event: 'delivered' });
      return 'delivered';
    } catch (err) {
      if (err instanceof AuthError) this.deps.onAuthError(err);
      this.log.log('ERROR', `the result could not be delivered and is lost: ${errorMessage(err)}`, { event: 'lost' });
      return 'stopped';
    }
  }

  /** The runner's result, a failure built from what stopped it, or null when nothing is to be reported. */
  private async runRunner(ctx: Parameters<Runner['run']>[0]): Promise<RunnerResult | null> {
    const signal = this.controller.signal;
    let raw: RunnerResult | undefined;
    let error: unknown;
    try {
      raw = await Promise.race([this.deps.runner.run(ctx), abandonAfterAbort(signal, RUNNER_ABORT_GRACE_MS)]);
    } catch (err) {
      error = err;
    }
    if (signal.aborted) {
      const reason = signal.reason as JobAbort;
      if (reason.kind === 'cancel' || reason.kind === 'lease-lost') return null;
      // A timeout or a shutdown is not the job's fault: another attempt may well succeed.
      return { success: false, retryable: true, error: reason.message };
    }
    if (error !== undefined) {
      const retryable = error instanceof RunnerFailure ? error.retryable : Boolean((error as { retryable?: unknown }).retryable);
      return { success: false, retryable, error: truncate(errorMessage(error)) };
    }
    const checked = CompleteRequest.omit({ lease_token: true }).safeParse(raw);
    if (!checked.success) {
      const i = checked.error.issues[0]!;
      return { success: false, retryable: false, error: `the ${this.deps.runner.name} runner returned an invalid result: ${i.path.join('.')}: ${i.message}` };
    }
    const r = checked.data as RunnerResult;
    if (!r.success && r.error) r.error = truncate(r.error);
    return r;
  }
}

/** Never resolves; rejects a while after `signal` aborts, for runners that ignore their signal. */
function abandonAfterAbort(signal: AbortSignal, graceMs: number): Promise<never> {
  return new Promise((_, reject) => {
    const go = () => setTimeout(() => reject(signal.reason), graceMs).unref();
    if (signal.aborted) go();
    else signal.addEventListener('abort', go, { once: true });
  });
}

function truncate(s: string): string {
  return s.length > 3900 ? s.slice(0, 3900) + '...' : s;
}
