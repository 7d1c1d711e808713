/**
 * Sends outbox entries to the API until each one is settled: acknowledged (2xx), or refused for good
 * (404/409: the request is gone, cancelled, or the lease passed to another agent). Network errors and
 * 5xx are retried with backoff for as long as the agent runs; what is left stays in the outbox for the
 * next start.
 */
import type { ApiClient } from './api-client.js';
import { Backoff } from './backoff.js';
import { ApiError, AuthError, errorMessage } from './errors.js';
import type { Logger } from './log.js';
import type { Outbox, OutboxItem } from './outbox.js';
import { sleep } from './sleep.js';

export type DeliveryOutcome = 'delivered' | 'refused' | 'rejected' | 'stopped';

export interface DeliveryDeps {
  client: Pick<ApiClient, 'complete'>;
  outbox: Outbox;
  log: Logger;
  maxBackoffMs: number;
  baseBackoffMs?: number;
}

/**
 * Delivers one entry. Resolves 'stopped' when `signal` aborts first (the entry stays in the outbox);
 * throws AuthError when the token is refused (the entry stays; the agent stops).
 */
export async function deliver(item: OutboxItem, deps: DeliveryDeps, signal: AbortSignal): Promise<DeliveryOutcome> {
  const { entry, file } = item;
  const log = deps.log.child({ job_id: entry.request_id });
  const backoff = new Backoff({ baseMs: deps.baseBackoffMs ?? 500, capMs: deps.maxBackoffMs });
  while (!signal.aborted) {
    try {
      const res = await deps.client.complete(entry.request_id, entry.body, signal);
      await deps.outbox.remove(file);
      log.log('INFO', res.replay ? 'result was already recorded by the API (replay)' : `result delivered: request ${res.status}`, {
        event: 'delivered',
        status: res.status,
        replay: res.replay,
        attempts: backoff.attempts + 1,
      });
      return 'delivered';
    } catch (err) {
      if (signal.aborted) break;
      if (err instanceof AuthError) throw err;
      if (err instanceof ApiError && (err.status === 404 || err.status === 409)) {
        // Final by design: the API will never take this result (cancelled, reclaimed, or deleted).
        await deps.outbox.remove(file);
        log.log('WARNING', `result not accepted by the API and dropped: ${err.message}`, { event: 'refused', status: err.status });
        return 'refused';
      }
      if (err instanceof ApiError && !err.transient) {
        await deps.outbox.reject(file, err.message);
        log.log('ERROR', `result rejected by the API; kept in ${deps.outbox.dir}/rejected for inspection: ${err.message}`, { event: 'rejected', status: err.status });
        // Tell the API why, so the request fails with a reason instead of waiting out its lease.
        if (entry.body.success) {
          const failure = { success: false, retryable: false, error: `the API refused the result: ${err.message}`.slice(0, 3900), lease_token: entry.body.lease_token };
          await deps.client.complete(entry.request_id, failure, signal).catch((e: unknown) => log.log('WARNING', `could not report the refusal: ${errorMessage(e)}`));
        }
        return 'rejected';
      }
      const wait = backoff.next(err instanceof ApiError ? err.retryAfterMs : undefined);
      log.log('WARNING', `could not deliver the result (${errorMessage(err)}); retrying in ${(wait / 1000).toFixed(1)} s; it is safe in the outbox`, {
        event: 'delivery-retry',
        retry_in_ms: wait,
      });
      await sleep(wait, signal);
    }
  }
  log.log('WARNING', 'stopped before the result was delivered; it stays in the outbox and is sent at the next start', { event: 'delivery-deferred', file });
  return 'stopped';
}

/** Delivers everything in the outbox, oldest first (at start-up, before any claim). */
export async function flushOutbox(deps: DeliveryDeps, signal: AbortSignal): Promise<{ delivered: number; refused: number; left: number }> {
  const items = await deps.outbox.list((file, reason) => deps.log.log('ERROR', `moved aside ${file}: ${reason}`));
  const counts = { delivered: 0, refused: 0, left: 0 };
  if (items.length) deps.log.log('INFO', `outbox holds ${items.length} undelivered result(s); sending them before claiming work`);
  for (const item of items) {
    const r = await deliver(item, deps, signal);
    if (r === 'delivered') counts.delivered++;
    else if (r === 'stopped') counts.left++;
    else counts.refused++;
  }
  return counts;
}
