/**
 * Runs `fn` over `items` with at most `limit` in flight. On the first failure (or the caller's abort) the
 * others are aborted through the signal they were given, and the promise settles only after every started
 * task has finished: when it rejects, no download is still writing a file.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal,
  fn: (item: T, index: number, signal: AbortSignal) => Promise<R>,
): Promise<R[]> {
  signal.throwIfAborted();
  const ac = new AbortController();
  const onAbort = () => ac.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const out = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && !ac.signal.aborted && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i, ac.signal);
      } catch (e) {
        if (!failure) {
          failure = { error: e };
          ac.abort(e);
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  // The caller's abort wins over the errors it caused in the tasks.
  signal.throwIfAborted();
  if (failure) throw failure.error;
  return out;
}
