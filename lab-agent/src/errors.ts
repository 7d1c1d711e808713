/**
 * The agent's error types. Each one says what the operator should do: fix the configuration (exit 2),
 * fix the token (the agent stops), or nothing (the agent retries by itself).
 */

/** Invalid configuration: the CLI prints the message and exits with code 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The API refused the token (401/403): retrying cannot help, so the agent stops. */
export class AuthError extends Error {
  override name = 'AuthError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A non-2xx answer from the job API. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    /** From a Retry-After header, when the server sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }

  /** 5xx, 408 and 429 are worth retrying; any other 4xx will not change by asking again. */
  get transient(): boolean {
    return this.status >= 500 || this.status === 408 || this.status === 429;
  }
}

/** The API could not be reached (refused, reset, DNS, timeout) or answered something unreadable. */
export class NetworkError extends Error {
  override name = 'NetworkError';
}

/** Why a job's work was stopped. The runner sees it as `signal.reason`. */
export type AbortKind = 'cancel' | 'lease-lost' | 'timeout' | 'shutdown';

export class JobAbort extends Error {
  override name = 'JobAbort';
  constructor(
    readonly kind: AbortKind,
    message: string,
  ) {
    super(message);
  }
}

/** A runner failure that says whether another attempt may succeed. */
export class RunnerFailure extends Error {
  override name = 'RunnerFailure';
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
