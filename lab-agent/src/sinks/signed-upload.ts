/**
 * Uploads a job's output files (the DICOM SEG, the preview) to the signed PUT URLs the API handed out
 * with the claim, so the lab PC needs no storage credentials. Transient failures are retried with
 * backoff; a URL that expired is replaced by fresh ones for the same lease.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { OutputRef, SignedTarget } from '@lab-relay/protocol';
import { Backoff } from '../backoff.js';
import { RunnerFailure, errorMessage } from '../errors.js';
import { sleep } from '../sleep.js';

export interface UploadOptions {
  signal: AbortSignal;
  /** Fresh targets for the current lease (POST /api/inference/{id}/uploads). */
  refresh?: () => Promise<Record<string, SignedTarget>>;
  attempts?: number;
  backoff?: Backoff;
  fetchImpl?: typeof fetch;
}

export async function uploadOutputs(
  files: Record<string, string>,
  targets: Record<string, SignedTarget>,
  o: UploadOptions,
): Promise<Record<string, OutputRef>> {
  const out: Record<string, OutputRef> = {};
  let current = targets;
  for (const [name, path] of Object.entries(files)) {
    if (!current[name]) continue; // the deployment takes no such output
    const data = await readFile(path);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const r = await putWithRetries(name, data, () => current[name]!, async () => {
      if (!o.refresh) return false;
      current = await o.refresh();
      return Boolean(current[name]);
    }, o);
    out[name] = { object: r.object, bytes: data.length, sha256, content_type: r.headers['content-type'] ?? 'application/octet-stream' };
  }
  return out;
}

async function putWithRetries(
  name: string,
  data: Buffer,
  target: () => SignedTarget,
  refresh: () => Promise<boolean>,
  o: UploadOptions,
): Promise<SignedTarget> {
  const attempts = o.attempts ?? 6;
  const backoff = o.backoff ?? new Backoff({ baseMs: 1000, capMs: 30_000 });
  const doFetch = o.fetchImpl ?? fetch;
  let refreshed = false;
  let last = '';
  for (let i = 1; i <= attempts; i++) {
    o.signal.throwIfAborted();
    const t = target();
    // An expired URL is refreshed before it is even tried.
    if (Date.parse(t.expires_at) <= Date.now() + 5000 && !refreshed) {
      refreshed = true;
      if (await refresh()) continue;
    }
    try {
      const res = await doFetch(t.url, { method: 'PUT', headers: t.headers, body: data, signal: AbortSignal.any([o.signal, AbortSignal.timeout(120_000)]) });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return t;
      last = `HTTP ${res.status}`;
      if (res.status === 403 && !refreshed) {
        // Cloud Storage answers 403 for an expired or otherwise refused signature: one fresh URL.
        refreshed = true;
        if (await refresh()) continue;
      }
      if (res.status < 500 && res.status !== 429 && res.status !== 408) {
        throw new RunnerFailure(`uploading the ${name} output was refused (${last}); the signed URL does not allow it`, false);
      }
    } catch (err) {
      if (err instanceof RunnerFailure || o.signal.aborted) throw err;
      last = errorMessage(err);
    }
    if (i < attempts) await sleep(backoff.next(), o.signal);
  }
  throw new RunnerFailure(`uploading the ${name} output failed ${attempts} times (last: ${last})`, true);
}
