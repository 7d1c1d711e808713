import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ClaimedJob, JobView, MetricsResponse, StartResponse } from '@lab-relay/protocol';
import { AGENT_TOKEN, CLIENT_TOKEN, startTestApi, type TestApi } from '../harness/api-server.js';

const S4 = ['t1', 't1c', 't2', 'flair'];

function rawStatus(base: string, method: string, path: string, body: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, method, path, headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTP API (node:http, SQLite)', () => {
  let t: TestApi;
  const lines: string[] = [];
  beforeAll(async () => {
    t = await startTestApi({ lines });
  });
  afterAll(async () => {
    await t.close();
  });

  it('runs the seed flow end to end with the seed shapes', async () => {
    const start = await t.call('POST', '/api/inference/abc-def-ghi/start', { body: { series_ids: S4 } });
    expect(start.status).toBe(202);
    expect(StartResponse.parse(start.body)).toMatchObject({ success: true, status: 'pending', existing: false });

    const again = await t.call('POST', '/api/inference/abc-def-ghi/start', { body: { series_ids: { t1: 't1', t1c: 't1c', t2: 't2', flair: 'flair' } } });
    expect(again.status).toBe(200);
    expect(again.body.request_id).toBe(start.body.request_id);

    const claim = await t.call('GET', '/api/inference/pending', { token: 'agent', headers: { 'x-agent-id': 'lab-pc-1' } });
    expect(claim.status).toBe(200);
    const job = ClaimedJob.parse(claim.body);
    expect(job).toMatchObject({ id: start.body.request_id, series_id: 'abc-def-ghi', series_ids: S4, attempt: 1 });

    const hb = await t.call('POST', `/api/inference/${job.id}/heartbeat`, { token: 'agent', body: { lease_token: job.lease_token, progress: { stage: 'infer', percent: 50 } } });
    expect(hb.status).toBe(200);
    expect(hb.body.cancel).toBe(false);

    const running = await t.call('GET', '/api/inference/abc-def-ghi/status');
    expect(JobView.parse(running.body)).toMatchObject({ status: 'processing', progress: { stage: 'infer', percent: 50 }, agent_id: 'lab-pc-1' });

    const body = { success: true, seg_instance_id: 'orthanc-instance-id', tumor_detected: true, tumor_volume_voxels: 1234, inference_time_seconds: 45.2, lease_token: job.lease_token };
    const done = await t.call('POST', `/api/inference/${job.id}/complete`, { token: 'agent', body });
    expect(done.status).toBe(200);
    expect(done.body).toEqual({ success: true, status: 'completed', replay: false });
    const replay = await t.call('POST', `/api/inference/${job.id}/complete`, { token: 'agent', body });
    expect(replay.status).toBe(200);
    expect(replay.body.replay).toBe(true);

    const st = await t.call('GET', '/api/inference/abc-def-ghi/status');
    expect(st.status).toBe(200);
    expect(st.body).toMatchObject({ status: 'completed', seg_instance_id: 'orthanc-instance-id', result: { tumor_detected: true, tumor_volume_voxels: 1234 } });
    expect(Date.parse(st.body.created_at)).not.toBeNaN();
    expect(Date.parse(st.body.completed_at)).not.toBeNaN();

    expect((await t.call('GET', '/api/inference/pending', { token: 'agent' })).body).toEqual({ id: null });
  });

  it('answers unknown requests with the seed 404 shapes', async () => {
    const c = await t.call('POST', '/api/inference/nope/complete', { token: 'agent', body: { success: true } });
    expect(c.status).toBe(404);
    expect(c.body).toEqual({ success: false, error: 'Request not found' });
    const s = await t.call('GET', '/api/inference/never-started/status');
    expect(s.status).toBe(404);
    expect(s.body.error).toBe('Not found');
  });

  it('answers 409 to a stale lease', async () => {
    await t.call('POST', '/api/inference/stale/start', { body: { series_ids: S4 } });
    const job = (await t.call('GET', '/api/inference/pending', { token: 'agent' })).body;
    const r = await t.call('POST', `/api/inference/${job.id}/complete`, { token: 'agent', body: { success: true, lease_token: 'someone-elses-lease' } });
    expect(r.status).toBe(409);
    expect(r.body.success).toBe(false);
    const hb = await t.call('POST', `/api/inference/${job.id}/heartbeat`, { token: 'agent', body: { lease_token: 'someone-elses-lease' } });
    expect(hb.status).toBe(409);
  });

  it('cancels, retries, lists and reports metrics', async () => {
    const start = await t.call('POST', '/api/inference/ops-1/start', { body: { series_ids: S4, priority: 100 } });
    const id = start.body.request_id;
    const job = (await t.call('GET', '/api/inference/pending', { token: 'agent' })).body;
    expect(job.id).toBe(id);
    const c = await t.call('POST', `/api/inference/${id}/cancel`);
    expect(c.status).toBe(200);
    expect(c.body.request.status).toBe('cancelled');
    const hb = await t.call('POST', `/api/inference/${id}/heartbeat`, { token: 'agent', body: { lease_token: job.lease_token } });
    expect(hb.body.cancel).toBe(true);
    const r = await t.call('POST', `/api/inference/${id}/retry`);
    expect(r.body.request.status).toBe('pending');
    const list = await t.call('GET', '/api/inference?status=pending&limit=5');
    expect(list.status).toBe(200);
    expect(list.body.items.map((j: { request_id: string }) => j.request_id)).toContain(id);
    const m = await t.call('GET', '/api/metrics');
    expect(MetricsResponse.parse(m.body).counts.pending).toBeGreaterThanOrEqual(1);
    expect((await t.call('POST', `/api/inference/${id}/cancel`)).status).toBe(200);
  });

  describe('authentication', () => {
    const clientEndpoints: [string, string][] = [
      ['POST', '/api/inference/x/start'],
      ['GET', '/api/inference/x/status'],
      ['POST', '/api/inference/x/cancel'],
      ['POST', '/api/inference/x/retry'],
      ['GET', '/api/inference'],
      ['GET', '/api/metrics'],
    ];
    const agentEndpoints: [string, string][] = [
      ['GET', '/api/inference/pending'],
      ['POST', '/api/inference/x/heartbeat'],
      ['POST', '/api/inference/x/complete'],
    ];
    it.each([...clientEndpoints, ...agentEndpoints])('%s %s: 401 without a token or with an unknown one', async (m, p) => {
      const none = await t.call(m, p, { token: null });
      expect(none.status).toBe(401);
      expect(none.body.error).toBe('missing bearer token');
      const bad = await t.call(m, p, { token: 'not-a-real-token-at-all' });
      expect(bad.status).toBe(401);
    });
    it.each(clientEndpoints)('%s %s: 403 with an agent token', async (m, p) => {
      expect((await t.call(m, p, { token: 'agent' })).status).toBe(403);
    });
    it.each(agentEndpoints)('%s %s: 403 with a client token', async (m, p) => {
      expect((await t.call(m, p, { token: 'client' })).status).toBe(403);
    });
    it('leaves healthz open', async () => {
      const h = await t.call('GET', '/api/healthz', { token: null });
      expect(h.status).toBe(200);
      expect(h.body).toEqual({ ok: true, store: 'sqlite' });
    });
    it('never writes a token into the logs', () => {
      const all = lines.join('\n');
      expect(all.length).toBeGreaterThan(0);
      expect(all).not.toContain(AGENT_TOKEN);
      expect(all).not.toContain(CLIENT_TOKEN);
      expect(all).not.toContain('someone-elses-lease');
    });
  });

  describe('bad input', () => {
    it('names the invalid field', async () => {
      const r = await t.call('POST', '/api/inference/bad/start', { body: { series_ids: ['a', 'b', 'c'] } });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(/series_ids/);
      const p = await t.call('POST', '/api/inference/bad/start', { body: { series_ids: S4, priority: 'high' } });
      expect(p.status).toBe(400);
      expect(p.body.error).toMatch(/priority/);
      const x = await t.call('POST', '/api/inference/bad/start', { body: { series_ids: S4, surprise: 1 } });
      expect(x.status).toBe(400);
      expect(x.body.error).toMatch(/surprise/);
      const w = await t.call('GET', '/api/inference/pending?wait=60', { token: 'agent' });
      expect(w.status).toBe(400);
      expect(w.body.error).toMatch(/wait/);
      const h = await t.call('GET', '/api/inference/pending', { token: 'agent', headers: { 'x-agent-id': 'bad agent!' } });
      expect(h.status).toBe(400);
      const c = await t.call('GET', '/api/inference?cursor=garbage');
      expect(c.status).toBe(400);
      expect(c.body.error).toMatch(/cursor/);
    });
    it('refuses malformed JSON, an empty start body and non-object bodies', async () => {
      expect((await t.call('POST', '/api/inference/bad/start', { body: '{"series_ids": [' })).status).toBe(400);
      expect((await t.call('POST', '/api/inference/bad/start')).status).toBe(400);
      expect((await t.call('POST', '/api/inference/bad/start', { body: '[1,2]' })).status).toBe(400);
      expect((await t.call('POST', '/api/inference/bad/start', { body: 'null' })).status).toBe(400);
    });
    it('refuses ids that would escape their path segment', async () => {
      expect((await t.call('POST', '/api/inference/a%2Fb/start', { body: { series_ids: S4 } })).status).toBe(400);
      // fetch would normalise "%2E%2E" away; send the raw path as a hostile client would.
      expect(await rawStatus(t.url, 'POST', '/api/inference/%2E%2E/start', JSON.stringify({ series_ids: S4 }))).toBe(400);
      expect((await t.call('POST', `/api/inference/${'x'.repeat(300)}/start`, { body: { series_ids: S4 } })).status).toBe(400);
      expect((await t.call('POST', '/api/inference/%E0%A4%A/start', { body: { series_ids: S4 } })).status).toBe(400);
    });
    it('answers 413 to a body over 1 MiB', async () => {
      const big = JSON.stringify({ series_ids: S4, pad: 'x'.repeat(1024 * 1024) });
      const r = await t.call('POST', '/api/inference/big/start', { body: big });
      expect(r.status).toBe(413);
      expect(r.body.success).toBe(false);
    });
    it('answers 413 to a result too large for one job document, and the job stays processing', async () => {
      const job = await t.startAndClaim('big-result');
      const r = await t.call('POST', `/api/inference/${job.id}/complete`, { token: 'agent', body: { success: true, lease_token: job.lease_token, notes: 'x'.repeat(600 * 1024) } });
      expect(r.status).toBe(413);
      expect(r.body.error).toMatch(/result larger than 512 KiB/);
      expect((await t.call('GET', '/api/inference/big-result/status')).body.status).toBe('processing');
    });
    it('answers unknown routes with 404 JSON and wrong methods with 405', async () => {
      const a = await t.call('GET', '/api/nothing-here');
      expect(a.status).toBe(404);
      expect(a.body.success).toBe(false);
      const b = await t.call('DELETE', '/api/inference/pending', { token: 'agent' });
      expect(b.status).toBe(405);
      expect(b.headers.get('allow')).toContain('GET');
      expect((await t.call('GET', '/api/inference/x/start')).status).toBe(405);
    });
  });

  it('serves the same routes without the /api prefix (gen1 function URLs)', async () => {
    expect((await t.call('GET', '/healthz', { token: null })).status).toBe(200);
  });

  it('allows CORS only for configured origins', async () => {
    const ok = await fetch(`${t.url}/api/inference/x/status`, { method: 'OPTIONS', headers: { origin: 'https://viewer.example', 'access-control-request-method': 'GET' } });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://viewer.example');
    expect(ok.headers.get('access-control-allow-headers')).toContain('authorization');
    const no = await fetch(`${t.url}/api/inference/x/status`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    expect(no.headers.get('access-control-allow-origin')).toBeNull();
    const get = await t.call('GET', '/api/metrics', { headers: { origin: 'https://viewer.example' } });
    expect(get.headers.get('access-control-allow-origin')).toBe('https://viewer.example');
  });

  it('logs structured JSON with severity, message and request id', () => {
    const entry = JSON.parse(lines.find((l) => l.includes('"httpRequest"'))!);
    expect(entry).toMatchObject({ severity: 'INFO' });
    expect(typeof entry.message).toBe('string');
    expect(typeof entry.request_id).toBe('string');
  });
});
