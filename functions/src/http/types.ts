/** A framework-neutral request: the node:http server and the functions-framework adapter both build one. */
export interface ApiRequest {
  method: string;
  /** The path without the query string, e.g. `/api/inference/pending`. */
  path: string;
  query: URLSearchParams;
  /** Lower-cased header names; first value only. */
  headers: Record<string, string | undefined>;
  /** The raw body, when there is one. */
  rawBody?: Buffer | undefined;
  /** Set by adapters whose framework already parsed a JSON body. */
  parsedBody?: unknown;
  /** Aborted when the client goes away (ends a long-poll early). */
  signal: AbortSignal;
  requestId: string;
}

export interface ApiResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** A non-JSON body (blob downloads); `body` is then ignored. */
  raw?: { data: Buffer; contentType: string };
}

export const MAX_BODY_BYTES = 1024 * 1024;

/** An error that becomes a JSON answer with this status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
