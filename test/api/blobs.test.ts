import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { JobView } from '@lab-relay/protocol';
import { FsBlobStore } from '../../functions/src/blobs/fs-blob-store.js';
import { startTestApi, type TestApi } from '../harness/api-server.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('outputs through signed URLs (embedded blob store)', () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi();
  });
  afterAll(async () => {
    await t.close();
  });

  const claim = (series: string) => t.startAndClaim(series);

  it('hands each claim one PUT per output, uploads land, and status hands out downloads of exactly those', async () => {
    const job = await claim('blob-1');
    expect(Object.keys(job.uploads!).sort()).toEqual(['preview', 'seg']);
    const seg = job.uploads!.seg!;
    expect(seg.method).toBe('PUT');
    expect(seg.headers).toEqual({ 'content-type': 'application/dicom' });
    expect(seg.url).toContain(`/api/blobs/requests/${job.id}/1/seg.dcm?`);
    const data = Buffer.from('DICM pretend segmentation bytes');
    const put = await fetch(seg.url, { method: 'PUT', headers: seg.headers, body: data });
    expect(put.status).toBe(200);

    const outputs = { seg: { object: `requests/${job.id}/1/seg.dcm`, bytes: data.length, sha256: sha(data), content_type: 'application/dicom' } };
    await t.call('POST', `/api/inference/${job.id}/complete`, { token: 'agent', body: { success: true, lease_token: job.lease_token, outputs } });
    const st = JobView.parse((await t.call('GET', '/api/inference/blob-1/status')).body);
    expect(Object.keys(st.downloads!)).toEqual(['seg']);
    const got = await fetch(st.downloads!.seg!.url);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('application/dicom');
    expect(Buffer.from(await got.arrayBuffer())).toEqual(data);
  });

  it('refuses a wrong content type, a tampered signature, another object, another method, and no signature', async () => {
    const job = await claim('blob-2');
    const seg = job.uploads!.seg!;
    const body = Buffer.from('x');
    expect((await fetch(seg.url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body })).status).toBe(403);
    const tampered = seg.url.replace(/sig=([^&]{4})/, 'sig=AAAA');
    expect((await fetch(tampered, { method: 'PUT', headers: seg.headers, body })).status).toBe(403);
    const other = seg.url.replace('/seg.dcm?', '/preview.png?');
    expect((await fetch(other, { method: 'PUT', headers: seg.headers, body })).status).toBe(403);
    expect((await fetch(seg.url, { method: 'GET' })).status).toBe(403);
    expect((await fetch(seg.url.split('?')[0]!, { method: 'PUT', headers: seg.headers, body })).status).toBe(403);
    const escape = seg.url.replace(`requests/${job.id}/1/seg.dcm`, '..%2F..%2Fetc%2Fpasswd');
    expect((await fetch(escape, { method: 'PUT', headers: seg.headers, body })).status).toBe(403);
  });

  it('refreshes upload URLs for the current lease only', async () => {
    const job = await claim('blob-3');
    const r = await t.call('POST', `/api/inference/${job.id}/uploads`, { token: 'agent', body: { lease_token: job.lease_token } });
    expect(r.status).toBe(200);
    expect(r.body.uploads.seg.url).toContain(`requests/${job.id}/1/seg.dcm`);
    expect((await t.call('POST', `/api/inference/${job.id}/uploads`, { token: 'agent', body: { lease_token: 'stale-lease' } })).status).toBe(409);
    expect((await t.call('POST', '/api/inference/unknown/uploads', { token: 'agent', body: { lease_token: 'x' } })).status).toBe(404);
  });

  it('signs downloads only for objects under the request’s own prefix', async () => {
    const a = await claim('blob-4');
    const foreign = { object: 'requests/someone-else/1/seg.dcm', bytes: 1, sha256: sha(Buffer.from('x')), content_type: 'application/dicom' };
    await t.call('POST', `/api/inference/${a.id}/complete`, { token: 'agent', body: { success: true, lease_token: a.lease_token, outputs: { seg: foreign } } });
    const st = (await t.call('GET', '/api/inference/blob-4/status')).body;
    expect(st.status).toBe('completed');
    expect(st.downloads).toBeUndefined();
  });
});

describe('FsBlobStore signatures', () => {
  it('expire', async () => {
    let now = Date.UTC(2026, 0, 1);
    const s = new FsBlobStore('/nonexistent', 'http://x', 'secret-secret-secret-secret-secret', () => now);
    const u = new URL((await s.signUpload('requests/r1/1/seg.dcm', 'application/dicom', 60)).url);
    const object = decodeURIComponent(u.pathname.replace('/api/blobs/', ''));
    expect(s.verify('PUT', object, u.searchParams, 'application/dicom')).toBeNull();
    now += 61_000;
    expect(s.verify('PUT', object, u.searchParams, 'application/dicom')).toBe('signed URL expired');
  });
});
