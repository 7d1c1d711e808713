import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { SignedTarget } from '@lab-relay/protocol';
import { Backoff } from '../../lab-agent/src/backoff.js';
import { RunnerFailure } from '../../lab-agent/src/errors.js';
import { uploadOutputs } from '../../lab-agent/src/sinks/signed-upload.js';

/** A storage stand-in whose answers the test scripts: 503s, an expired-signature 403, then success. */
describe('uploading outputs to signed URLs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'upload-'));
  const file = join(dir, 'seg.dcm');
  let server: Server;
  let base = '';
  const script: number[] = [];
  const received: { path: string; type: string | undefined; body: string }[] = [];
  beforeAll(async () => {
    writeFileSync(file, 'SEG bytes');
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = script.shift() ?? 200;
        if (status === 200) received.push({ path: req.url!, type: req.headers['content-type'], body: Buffer.concat(chunks).toString() });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const target = (sig: string, expiresInMs = 600_000): SignedTarget => ({
    url: `${base}/bucket/requests/r1/1/seg.dcm?sig=${sig}`,
    object: 'requests/r1/1/seg.dcm',
    method: 'PUT',
    headers: { 'content-type': 'application/dicom' },
    expires_at: new Date(Date.now() + expiresInMs).toISOString(),
  });
  const fast = () => new Backoff({ baseMs: 1, capMs: 5 });

  it('retries 503s, replaces a refused (expired) URL once, and reports the object with its digest', async () => {
    script.push(503, 503, 403);
    let refreshed = 0;
    const out = await uploadOutputs({ seg: file }, { seg: target('old') }, {
      signal: new AbortController().signal,
      backoff: fast(),
      refresh: async () => {
        refreshed++;
        return { seg: target('fresh') };
      },
    });
    expect(refreshed).toBe(1);
    expect(received.at(-1)).toEqual({ path: '/bucket/requests/r1/1/seg.dcm?sig=fresh', type: 'application/dicom', body: 'SEG bytes' });
    expect(out.seg).toEqual({
      object: 'requests/r1/1/seg.dcm',
      bytes: 9,
      sha256: createHash('sha256').update('SEG bytes').digest('hex'),
      content_type: 'application/dicom',
    });
  });

  it('refreshes a URL that has already expired before trying it', async () => {
    let refreshed = 0;
    await uploadOutputs({ seg: file }, { seg: target('stale', -1000) }, {
      signal: new AbortController().signal,
      backoff: fast(),
      refresh: async () => {
        refreshed++;
        return { seg: target('renewed') };
      },
    });
    expect(refreshed).toBe(1);
    expect(received.at(-1)!.path).toContain('sig=renewed');
  });

  it('gives up with a retryable failure when storage stays down, and a final one when refused', async () => {
    script.push(503, 503, 503);
    const down = await uploadOutputs({ seg: file }, { seg: target('x') }, { signal: new AbortController().signal, backoff: fast(), attempts: 3 }).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(RunnerFailure);
    expect((down as RunnerFailure).retryable).toBe(true);
    expect((down as Error).message).toMatch(/seg output failed 3 times \(last: HTTP 503\)/);
    script.push(400);
    const refused = await uploadOutputs({ seg: file }, { seg: target('x') }, { signal: new AbortController().signal, backoff: fast() }).catch((e: unknown) => e);
    expect((refused as RunnerFailure).retryable).toBe(false);
  });

  it('skips outputs the deployment takes no URL for', async () => {
    const out = await uploadOutputs({ seg: file, extra: file }, { seg: target('ok') }, { signal: new AbortController().signal });
    expect(Object.keys(out)).toEqual(['seg']);
  });
});
