/**
 * Long-polls the API for one job. Network errors and 5xx back off with jitter (capped; a Retry-After
 * wins); a refused token is thrown, since asking again cannot help.
 */
import type { ClaimedJob } from '@lab-relay/protocol';
import type { ApiClient } from './api-client.js';
import { Backoff } from './backoff.js';
import { ApiError, AuthError, errorMessage } from './errors.js';
import type { Logger } from './log.js';
import { sleep } from './sleep.js';

export interface PollerOptions {
  client: Pick<ApiClient, 'claim'>;
  log: Logger;
  waitS: number;
  maxBackoffMs: number;
  baseBackoffMs?: number;
  random?: () => number;
}

export class Poller {
  private readonly backoff: Backoff;
  private failingSince: number | null = null;

  constructor(private readonly o: PollerOptions) {
    this.backoff = new Backoff({ baseMs: o.baseBackoffMs ?? 500, capMs: o.maxBackoffMs, ...(o.random ? { random: o.random } : {}) });
  }

  /** A claimed job, or null (none came within the wait, the call failed and was waited out, or `signal` aborted). */
  async next(signal: AbortSignal): Promise<ClaimedJob | null> {
    try {
      const job = await this.o.client.claim(this.o.waitS, signal);
      if (this.failingSince !== null) {
        this.o.log.log('INFO', `the API answers again (after ${((Date.now() - this.failingSince) / 1000).toFixed(1)} s)`, { event: 'api-back' });
        this.failingSince = null;
      }
      this.backoff.reset();
      return job;
    } catch (err) {
      if (signal.aborted) return null;
      if (err instanceof AuthError) throw err;
      this.failingSince ??= Date.now();
      const wait = this.backoff.next(err instanceof ApiError ? err.retryAfterMs : undefined);
      // A 4xx other than 408/429 means a wrong URL or a version mismatch: an operator has to look.
      const sev = err instanceof ApiError && !err.transient ? 'ERROR' : 'WARNING';
      this.o.log.log(sev, `polling failed (${errorMessage(err)}); next try in ${(wait / 1000).toFixed(1)} s`, { event: 'poll-retry', retry_in_ms: wait });
      await sleep(wait, signal);
      return null;
    }
  }
}
