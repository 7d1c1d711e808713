/**
 * Uploads a job's output files (seg.dcm, preview.png) to the signed PUT targets the API handed out with
 * the claim, and describes them for the completion's `outputs` (object, bytes, sha256, content type).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { OutputRef, SignedTarget } from '@lab-relay/protocol';
import { RunnerFailure } from '../errors.js';

export interface OutputFile {
  path: string;
  contentType: string;
}

export interface UploadOptions {
  signal: AbortSignal;
  /** Attempts per file for network errors and 5xx/429 answers (default 3). */
  attempts?: number;
  /** Base backoff in ms (doubled per attempt; default 500). */
  backoffMs?: number;
  fetch?: typeof fetch;
}

/**
 * Uploads every file that has a target (names without a target are skipped: that deployment does not
 * store them). Throws a retryable RunnerFailure when a target keeps failing or has expired, a
 * non-retryable one when the server refuses the upload (4xx).
 */
export async function uploadOutputs(
  files: Record<string, OutputFile>,
  targets: Record<string, SignedTarget> | undefined,
  o: UploadOptions,
): Promise<Record<string, OutputRef>> {
  const out: Record<string, OutputRef> = {};
  if (!targets) return out;
  const doFetch = o.fetch ?? fetch;
  for (const [name, file] of Object.entries(files)) {
    const t = targets[name];
    if (!t) continue;
    if (t.method !== 'PUT') throw new RunnerFailure(`upload target for ${name} uses ${t.method}, expected PUT`, false);
    if (Date.parse(t.expires_at) <= Date.now()) throw new RunnerFailure(`the upload URL for ${name} expired at ${t.expires_at}`, true);
    const body = await readFile(file.path);
    const attempts = o.attempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      o.signal.throwIfAborted();
      let problem: string;
      try {
        const res = await doFetch(t.url, { method: 'PUT', headers: { ...t.headers }, body, signal: o.signal });
        if (res.ok) break;
        problem = `HTTP ${res.status}`;
        if (res.status < 500 && res.status !== 429 && res.status !== 408) {
          throw new RunnerFailure(`uploading ${name} (${t.object}) was refused: ${problem}`, false);
        }
      } catch (e) {
        if (e instanceof RunnerFailure || o.signal.aborted) throw e;
        problem = (e as Error).message;
      }
      if (attempt >= attempts) throw new RunnerFailure(`uploading ${name} (${t.object}) failed ${attempts} times: ${problem}`, true);
      await new Promise((r) => setTimeout(r, (o.backoffMs ?? 500) * 2 ** (attempt - 1)));
    }
    out[name] = {
      object: t.object,
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
      content_type: file.contentType,
    };
  }
  return out;
}
