/**
 * Writing downloaded bytes to disk: one FileHandle per file, closed before the promise settles, and the
 * file removed when anything fails, so a failed or aborted download leaves neither a partial file nor an
 * open descriptor behind.
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { Attempt } from './http.js';
import { ResponseError } from './http.js';

/** A file being written; `write` enforces a size cap, `commit` closes it, `discard` closes and deletes it. */
export class OutFile {
  private written = 0;
  private closed = false;
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly maxBytes: number,
    private readonly what: string,
  ) {}

  static async create(path: string, maxBytes: number, what: string): Promise<OutFile> {
    // 'wx': never overwrite; two instances mapping to one name would be a bug, not something to hide.
    return new OutFile(path, await open(path, 'wx'), maxBytes, what);
  }

  get size(): number {
    return this.written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.written += chunk.byteLength;
    if (this.written > this.maxBytes) throw new ResponseError(`${this.what} is larger than the limit of ${this.maxBytes} bytes`);
    await this.fh.write(chunk);
  }

  async commit(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  async discard(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => {});
    }
    await rm(this.path, { force: true });
  }
}

/** Streams a response body into `path`; the file exists afterwards only if every byte arrived. */
export async function bodyToFile(a: Attempt, path: string, maxBytes: number, what: string): Promise<number> {
  const f = await OutFile.create(path, maxBytes, what);
  try {
    if (a.res.body) {
      for await (const chunk of a.res.body) {
        a.alive();
        await f.write(chunk);
      }
    }
    await f.commit();
    return f.size;
  } catch (e) {
    await f.discard();
    throw e;
  }
}
