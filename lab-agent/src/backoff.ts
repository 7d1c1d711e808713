/**
 * Exponential backoff with "equal jitter" (half fixed, half random) so that agents which lost the API
 * together do not all come back in the same second; a server's Retry-After wins over the formula.
 */
export interface BackoffOptions {
  baseMs?: number;
  capMs?: number;
  random?: () => number;
}

/** The longest Retry-After the agent will honour, so a bogus header cannot park it for hours. */
const RETRY_AFTER_MAX_MS = 10 * 60_000;

export class Backoff {
  private failures = 0;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly random: () => number;

  constructor(o: BackoffOptions = {}) {
    this.baseMs = o.baseMs ?? 500;
    this.capMs = o.capMs ?? 60_000;
    this.random = o.random ?? Math.random;
  }

  /** The delay before the next try after one more failure. */
  next(retryAfterMs?: number): number {
    this.failures++;
    if (retryAfterMs !== undefined && retryAfterMs >= 0) return Math.min(retryAfterMs, RETRY_AFTER_MAX_MS);
    const exp = Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.failures - 1, 30));
    return Math.round(exp / 2 + this.random() * (exp / 2));
  }

  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
