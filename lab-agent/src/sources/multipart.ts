/**
 * A small streaming multipart/related parser (RFC 2046 / PS3.18 WADO-RS responses). Bytes are pushed in
 * as they arrive and each part's body is handed on in pieces, so memory stays at about one network chunk
 * plus the boundary length whatever the response size. Anything that is not a well-formed multipart body
 * (no boundary, a missing close delimiter, oversized headers) is a MultipartError.
 */
import { ResponseError } from './http.js';

export class MultipartError extends ResponseError {
  override name = 'MultipartError';
}

/** The boundary parameter of a multipart Content-Type header (quoted or not). */
export function boundaryOf(contentType: string | null): string {
  if (!contentType || !/^\s*multipart\//i.test(contentType)) {
    throw new MultipartError(`expected a multipart response, got Content-Type ${JSON.stringify(contentType ?? '(none)')}`);
  }
  const m = /;\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(contentType);
  const b = m?.[1] ?? m?.[2];
  // RFC 2046: 1 to 70 characters.
  if (!b || b.length > 70) throw new MultipartError(`multipart response without a valid boundary (Content-Type ${JSON.stringify(contentType)})`);
  return b;
}

export interface PartHandler {
  /** A new part with its (lower-cased) headers. */
  start(headers: Record<string, string>, index: number): Promise<void>;
  data(chunk: Uint8Array): Promise<void>;
  /** The part's body is complete. */
  end(): Promise<void>;
}

export interface MultipartLimits {
  /** Total bytes accepted (all parts, headers and delimiters). */
  maxTotalBytes: number;
  /** Largest header block of one part. */
  maxHeaderBytes?: number;
  /** Largest preamble before the first delimiter. */
  maxPreambleBytes?: number;
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

type State = 'preamble' | 'after-delimiter' | 'headers' | 'body' | 'done';

export class MultipartParser {
  private buf: Buffer = Buffer.alloc(0);
  private state: State = 'preamble';
  private total = 0;
  private parts = 0;
  /** "--boundary" for the first delimiter (may start the body), "\r\n--boundary" for the others. */
  private readonly dash: Buffer;
  private readonly delim: Buffer;
  private readonly maxHeader: number;
  private readonly maxPreamble: number;

  constructor(
    boundary: string,
    private readonly handler: PartHandler,
    private readonly limits: MultipartLimits,
  ) {
    this.dash = Buffer.from(`--${boundary}`, 'latin1');
    this.delim = Buffer.from(`\r\n--${boundary}`, 'latin1');
    this.maxHeader = limits.maxHeaderBytes ?? 16 << 10;
    this.maxPreamble = limits.maxPreambleBytes ?? 64 << 10;
  }

  get partCount(): number {
    return this.parts;
  }

  async push(chunk: Uint8Array): Promise<void> {
    this.total += chunk.byteLength;
    if (this.total > this.limits.maxTotalBytes) throw new MultipartError(`response is larger than the limit of ${this.limits.maxTotalBytes} bytes`);
    if (this.state === 'done') return; // epilogue: ignored
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    await this.run();
  }

  /** The body ended: anything but a seen close delimiter means a truncated or malformed response. */
  async end(): Promise<void> {
    if (this.state === 'done') return;
    if (this.state === 'preamble') throw new MultipartError('response has no multipart delimiter (not multipart, or the wrong boundary)');
    throw new MultipartError(`response ended in the middle of part ${this.parts} (truncated; no closing delimiter)`);
  }

  private async run(): Promise<void> {
    for (;;) {
      switch (this.state) {
        case 'preamble': {
          // The first delimiter may start the body or follow a preamble line.
          const at = this.buf.indexOf(this.dash);
          if (at < 0 || this.buf.length < at + this.dash.length + 2) {
            if (this.buf.length > this.maxPreamble + this.dash.length + 2) throw new MultipartError('response has no multipart delimiter (not multipart, or the wrong boundary)');
            return;
          }
          if (at > 0 && !(at >= 2 && this.buf[at - 2] === 0x0d && this.buf[at - 1] === 0x0a)) {
            throw new MultipartError('multipart delimiter not at the start of a line');
          }
          this.buf = this.buf.subarray(at + this.dash.length);
          this.state = 'after-delimiter';
          break;
        }
        case 'after-delimiter': {
          if (this.buf.length < 2) return;
          if (this.buf[0] === 0x2d && this.buf[1] === 0x2d) {
            // The close delimiter; an empty multipart body is legal (the caller decides what zero parts mean).
            this.state = 'done';
            this.buf = Buffer.alloc(0);
            return;
          }
          // Transport padding (spaces/tabs) may follow a delimiter before its CRLF.
          const eol = this.buf.indexOf(CRLF);
          if (eol < 0) {
            if (this.buf.length > 256) throw new MultipartError('malformed multipart delimiter line');
            return;
          }
          if (!/^[ \t]*$/.test(this.buf.subarray(0, eol).toString('latin1'))) throw new MultipartError('malformed multipart delimiter line');
          this.buf = this.buf.subarray(eol + 2);
          this.state = 'headers';
          break;
        }
        case 'headers': {
          // A part with no headers starts with the blank line straight away.
          let headerText: string;
          if (this.buf.length >= 2 && this.buf[0] === 0x0d && this.buf[1] === 0x0a) {
            headerText = '';
            this.buf = this.buf.subarray(2);
          } else {
            const end = this.buf.indexOf(HEADER_END);
            if (end < 0) {
              if (this.buf.length > this.maxHeader) throw new MultipartError(`part ${this.parts + 1} has a header block over ${this.maxHeader} bytes (not multipart?)`);
              return;
            }
            headerText = this.buf.subarray(0, end).toString('latin1');
            this.buf = this.buf.subarray(end + 4);
          }
          const headers: Record<string, string> = {};
          for (const line of headerText.split('\r\n')) {
            if (!line) continue;
            const colon = line.indexOf(':');
            if (colon <= 0) throw new MultipartError(`part ${this.parts + 1} has a malformed header line ${JSON.stringify(line.slice(0, 80))}`);
            headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
          }
          this.parts++;
          await this.handler.start(headers, this.parts - 1);
          this.state = 'body';
          break;
        }
        case 'body': {
          const at = this.buf.indexOf(this.delim);
          if (at < 0) {
            // Keep a tail that could be the start of a delimiter split across chunks.
            const keep = Math.min(this.buf.length, this.delim.length - 1);
            const emit = this.buf.length - keep;
            if (emit > 0) {
              // Copy: the handler may hold on to it while we reuse the tail.
              await this.handler.data(this.buf.subarray(0, emit));
              this.buf = Buffer.from(this.buf.subarray(emit));
            }
            return;
          }
          if (at > 0) await this.handler.data(this.buf.subarray(0, at));
          await this.handler.end();
          this.buf = this.buf.subarray(at + this.delim.length);
          this.state = 'after-delimiter';
          break;
        }
        case 'done':
          return;
      }
    }
  }
}
