/**
 * Access control gaps not covered elsewhere (issue 7). The role matrix of the job endpoints is in
 * test/api/http.test.ts, signed-URL basics in test/api/blobs.test.ts; here: the agent's `uploads`
 * endpoint, blob downloads without or with a foreign signature, a bearer token in place of a signature,
 * leases that only fence their own request, unfenced (seed-style) completions that cannot rewrite a
 * result, and `/api/web-config` handing out no token unless the loopback hand-off is on (never the agent's).
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { JobView } from '@lab-relay/protocol';
import { AGENT_TOKEN, CLIENT_TOKEN, startTestApi, type TestApi } from '../harness/api-server.js';

const S4 = ['t1', 't1c', 't2', 'flair'];
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('access control gaps', () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi();
  });
  afterAll(async () => {
    await t.close();
  });

  const claim = (series: string) => t.startAndClaim(series);

  /** Claims, uploads a SEG through the claim's signed PUT, completes: a request with a downloadable SEG. */
  async function completedWithSeg(series: string, content: string) {
    const job = await claim(series);
    const seg = job.uploads!.seg!;
    const data = Buffer.from(content);
    expect((await fetch(seg.url, { method: 'PUT', headers: seg.headers, body: data })).status).toBe(200);
    const object = `requests/${job.id}/1/seg.dcm`;
    const outputs = { seg: { object, bytes: data.length, sha256: sha(data), content_type: 'application/dicom' } };
    expect((await t.call('POST', `/api/inference/${job.id}/complete`, { token: 'agent', body: { success: true, lease_token: job.lease_token, outputs } })).status).toBe(200);
    const view = JobView.parse((await t.call('GET', `/api/inference/${series}/status`)).body);
    return { job, object, data, download: view.downloads!.seg!.url };
  }

  it('POST /api/inference/{id}/uploads: 401 without a token or with an unknown one, 403 with a client token', async () => {
    const job = await claim('acc-uploads');
    const body = { lease_token: job.lease_token };
    expect((await t.call('POST', `/api/inference/${job.id}/uploads`, { token: null, body })).status).toBe(401);
    expect((await t.call('POST', `/api/inference/${job.id}/uploads`, { token: 'not-a-real-token-at-all', body })).status).toBe(401);
    expect((await t.call('POST', `/api/inference/${job.id}/uploads`, { token: 'client', body })).status).toBe(403);
    // Control: the agent gets fresh URLs.
    expect((await t.call('POST', `/api/inference/${job.id}/uploads`, { token: 'agent', body })).status).toBe(200);
  });

  it('a blob is unreachable without its signature, even with a bearer token of either role', async () => {
    const a = await completedWithSeg('acc-blob-nosig', 'SEG of A');
    expect((await fetch(a.download)).status).toBe(200);
    const bare = a.download.split('?')[0]!;
    for (const method of ['GET', 'HEAD']) {
      expect((await fetch(bare, { method })).status).toBe(403);
      for (const token of [CLIENT_TOKEN, AGENT_TOKEN]) {
        expect((await fetch(bare, { method, headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
      }
    }
  });

  it("request A's download URL does not reach request B's object, nor overwrite A's, nor outlive its expiry", async () => {
    const a = await completedWithSeg('acc-blob-a', 'SEG of A');
    const b = await completedWithSeg('acc-blob-b', 'SEG of B');
    // Control: each URL reaches its own object.
    expect(Buffer.from(await (await fetch(b.download)).arrayBuffer()).toString()).toBe('SEG of B');
    // A's signature and expiry on B's object path.
    const aOnB = a.download.replace(encodeURI(a.object).replace(/\//g, '%2F'), encodeURI(b.object).replace(/\//g, '%2F')).replace(a.object, b.object);
    expect(aOnB).not.toBe(a.download);
    const res = await fetch(aOnB);
    expect(res.status).toBe(403);
    expect(await res.text()).not.toContain('SEG of B');
    // A's other outputs (the preview slot) are not reachable with the SEG's signature either.
    expect((await fetch(a.download.replace('/seg.dcm?', '/preview.png?'))).status).toBe(403);
    // A download URL is a GET/HEAD URL: a PUT with it must not replace the SEG.
    expect((await fetch(a.download, { method: 'PUT', headers: { 'content-type': 'application/dicom' }, body: 'forged' })).status).toBe(403);
    const asPut = a.download.replace('method=GET', 'method=PUT');
    expect(asPut).not.toBe(a.download);
    expect((await fetch(asPut, { method: 'PUT', headers: { 'content-type': 'application/dicom' }, body: 'forged' })).status).toBe(403);
    // Nor can its lifetime be stretched: the expiry is signed.
    const u = new URL(a.download);
    u.searchParams.set('expires', String(Number(u.searchParams.get('expires')) + 7 * 24 * 3600));
    expect((await fetch(u)).status).toBe(403);
    expect(Buffer.from(await (await fetch(a.download)).arrayBuffer()).toString()).toBe('SEG of A');
  });

  it("a lease fences only its own request: A's lease token is refused on B", async () => {
    const a = await claim('acc-lease-a');
    const b = await claim('acc-lease-b');
    const onB = { lease_token: a.lease_token };
    expect((await t.call('POST', `/api/inference/${b.id}/heartbeat`, { token: 'agent', body: onB })).status).toBe(409);
    expect((await t.call('POST', `/api/inference/${b.id}/uploads`, { token: 'agent', body: onB })).status).toBe(409);
    expect((await t.call('POST', `/api/inference/${b.id}/complete`, { token: 'agent', body: { success: true, ...onB } })).status).toBe(409);
    const st = (await t.call('GET', '/api/inference/acc-lease-b/status')).body;
    expect(st.status).toBe('processing');
    for (const j of [a, b]) await t.call('POST', `/api/inference/${j.id}/cancel`);
  });

  it('an unfenced completion (no lease token, as the seed worker sent) cannot finish an unclaimed request or rewrite a result', async () => {
    expect((await t.call('POST', '/api/inference/acc-unfenced-p/start', { body: { series_ids: S4 } })).status).toBe(202);
    const pending = (await t.call('GET', '/api/inference/acc-unfenced-p/status')).body;
    const r1 = await t.call('POST', `/api/inference/${pending.request_id}/complete`, { token: 'agent', body: { success: true, tumor_detected: true } });
    expect(r1.status).toBe(409);
    expect((await t.call('GET', '/api/inference/acc-unfenced-p/status')).body.status).toBe('pending');
    await t.call('POST', `/api/inference/${pending.request_id}/cancel`);

    const done = await completedWithSeg('acc-unfenced-c', 'SEG');
    const before = (await t.call('GET', '/api/inference/acc-unfenced-c/status')).body;
    const r2 = await t.call('POST', `/api/inference/${done.job.id}/complete`, { token: 'agent', body: { success: true, tumor_detected: true, seg_instance_id: 'forged' } });
    expect(r2.status).toBe(409);
    const after = (await t.call('GET', '/api/inference/acc-unfenced-c/status')).body;
    expect(after.result).toEqual(before.result);
    expect(after.seg_instance_id).toBe(before.seg_instance_id);
  });

  it('/api/web-config hands out no token without the hand-off', async () => {
    const r = await t.call('GET', '/api/web-config', { token: null });
    expect(r.status).toBe(200);
    const text = JSON.stringify(r.body);
    expect(text).not.toContain(CLIENT_TOKEN);
    expect(text).not.toContain(AGENT_TOKEN);
    expect(r.body.token).toBeUndefined();
  });

  it('/api/web-config with the loopback hand-off gives the client token, never the agent token', async () => {
    const h = await startTestApi({ env: { WEB_TOKEN_HANDOFF: 'true', HOST: '127.0.0.1' } });
    try {
      const r = await h.call('GET', '/api/web-config', { token: null });
      expect(r.body.token).toBe(CLIENT_TOKEN);
      expect(JSON.stringify(r.body)).not.toContain(AGENT_TOKEN);
    } finally {
      await h.close();
    }
  });
});
