import { describe, expect, it } from '@jest/globals';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { uploadOutputs } from '../../lab-agent/src/runners/upload-outputs.js';
import { RunnerFailure } from '../../lab-agent/src/errors.js';

const target = (expiresInMs = 60_000) => ({
  url: 'https://blobs.example/requests/r1/1/seg.dcm', object: 'requests/r1/1/seg.dcm', method: 'PUT' as const,
  headers: { 'content-type': 'application/dicom' }, expires_at: new Date(Date.now() + expiresInMs).toISOString(),
});

async function file() {
  const p = path.join(await mkdtemp(path.join(os.tmpdir(), 'up-')), 'seg.dcm');
  await writeFile(p, 'abc');
  return { seg: { path: p, contentType: 'application/dicom' } };
}

/** A fetch that answers the given statuses in turn and records what it was sent. */
function fakeFetch(statuses: (number | Error)[]) {
  const calls: { url: string; method?: string; body?: unknown }[] = [];
  const f = (async (url: string, init?: RequestInit) => {
    calls.push({ url, method: init?.method, body: init?.body });
    const s = statuses.shift()!;
    if (s instanceof Error) throw s;
    return new Response(null, { status: s });
  }) as unknown as typeof fetch;
  return { f, calls };
}

describe('uploadOutputs', () => {
  it('PUTs each file with its target and describes it for the completion', async () => {
    const { f, calls } = fakeFetch([200]);
    const out = await uploadOutputs(await file(), { seg: target() }, { signal: new AbortController().signal, fetch: f });
    expect(calls).toHaveLength(1);
    expect(calls[0]!.method).toBe('PUT');
    expect(out).toEqual({
      seg: { object: 'requests/r1/1/seg.dcm', bytes: 3, sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', content_type: 'application/dicom' },
    });
  });

  it('uploads nothing when the deployment gave no targets', async () => {
    const { f, calls } = fakeFetch([]);
    expect(await uploadOutputs(await file(), undefined, { signal: new AbortController().signal, fetch: f })).toEqual({});
    expect(calls).toHaveLength(0);
  });

  it('retries 5xx and network errors, then gives up with a retryable failure', async () => {
    const { f, calls } = fakeFetch([503, new Error('socket hang up'), 200]);
    await uploadOutputs(await file(), { seg: target() }, { signal: new AbortController().signal, fetch: f, backoffMs: 1 });
    expect(calls).toHaveLength(3);
    const bad = fakeFetch([500, 500, 500]);
    const e = await uploadOutputs(await file(), { seg: target() }, { signal: new AbortController().signal, fetch: bad.f, backoffMs: 1 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RunnerFailure);
    expect((e as RunnerFailure).retryable).toBe(true);
    expect((e as Error).message).toBe('uploading seg (requests/r1/1/seg.dcm) failed 3 times: HTTP 500');
  });

  it('does not retry a refusal (4xx) and refuses an expired URL as retryable', async () => {
    const { f, calls } = fakeFetch([403]);
    const e = await uploadOutputs(await file(), { seg: target() }, { signal: new AbortController().signal, fetch: f }).catch((x: unknown) => x);
    expect(calls).toHaveLength(1);
    expect((e as RunnerFailure).retryable).toBe(false);
    expect((e as Error).message).toContain('was refused: HTTP 403');
    const x = await uploadOutputs(await file(), { seg: target(-1000) }, { signal: new AbortController().signal }).catch((y: unknown) => y);
    expect((x as RunnerFailure).retryable).toBe(true);
    expect((x as Error).message).toContain('the upload URL for seg expired');
  });
});
