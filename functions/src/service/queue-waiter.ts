/**
 * Long-poll waiters. A claimer that found nothing waits here until a job may have been queued
 * (`wake()`, fed by the store's cross-instance watch), its deadline, or its client going away.
 * The generation counter closes the gap between "looked and found nothing" and "started waiting":
 * a wake-up in between is not lost.
 */
export class QueueWaiter {
  private readonly waiting = new Set<() => void>();
  private gen = 0;

  get generation(): number {
    return this.gen;
  }

  wake(): void {
    this.gen++;
    const all = [...this.waiting];
    this.waiting.clear();
    for (const w of all) w();
  }

  get size(): number {
    return this.waiting.size;
  }

  /** Resolves on a wake-up after generation `since`, after `ms`, or when `signal` aborts. */
  wait(ms: number, since: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted || ms <= 0 || this.gen !== since) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.waiting.add(done);
    });
  }
}
