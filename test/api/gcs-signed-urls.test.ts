import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Storage } from '@google-cloud/storage';
import { GcsBlobStore } from '../../functions/src/blobs/gcs-blob-store.js';
import { startV4Verifier, type V4Verifier } from '../harness/gcs-v4-verifier.js';

/**
 * No Cloud Storage emulator runs here: the API's V4 signed URLs are checked by an independent
 * verifier with a freshly generated service-account key (test/harness/gcs-v4-verifier.ts).
 */
describe('Cloud Storage V4 signed URLs', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientEmail = 'lab-relay-api@demo-project.iam.gserviceaccount.com';
  let v: V4Verifier;
  let store: GcsBlobStore;
  beforeAll(async () => {
    v = await startV4Verifier(publicKey, clientEmail);
    const storage = new Storage({
      projectId: 'demo-project',
      credentials: { client_email: clientEmail, private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
    });
    store = new GcsBlobStore(storage, 'lab-relay-outputs', v.url);
  });
  afterAll(async () => {
    await v.close();
  });

  it('uploads with the signed PUT and downloads with the signed GET', async () => {
    const up = await store.signUpload('requests/r1/1/seg.dcm', 'application/dicom', 600);
    expect(up.url).toContain('/lab-relay-outputs/requests/r1/1/seg.dcm?');
    expect(up.url).toContain('X-Goog-Algorithm=GOOG4-RSA-SHA256');
    const put = await fetch(up.url, { method: 'PUT', headers: up.headers, body: Buffer.from('seg bytes') });
    expect(put.status).toBe(200);
    const down = await store.signDownload('requests/r1/1/seg.dcm', 300);
    const got = await fetch(down.url);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('seg bytes');
  });

  it('reaches one object with one method only', async () => {
    const up = await store.signUpload('requests/r1/1/seg.dcm', 'application/dicom', 600);
    expect((await fetch(up.url.replace('/seg.dcm?', '/preview.png?'), { method: 'PUT', headers: up.headers, body: 'x' })).status).toBe(403);
    expect((await fetch(up.url, { method: 'GET' })).status).toBe(403);
    expect((await fetch(up.url, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'x' })).status).toBe(403);
    const forged = up.url.replace(/X-Goog-Signature=([0-9a-f]{8})/, 'X-Goog-Signature=00000000');
    expect((await fetch(forged, { method: 'PUT', headers: up.headers, body: 'x' })).status).toBe(403);
  });

  it('expires', async () => {
    const up = await store.signUpload('requests/r2/1/seg.dcm', 'application/dicom', 60);
    expect(Date.parse(up.expires_at) - Date.now()).toBeLessThanOrEqual(60_000);
    v.clock.now = Date.now() + 61_000;
    try {
      const r = await fetch(up.url, { method: 'PUT', headers: up.headers, body: 'x' });
      expect(r.status).toBe(403);
      expect(await r.text()).toContain('expired');
    } finally {
      v.clock.now = null;
    }
  });
});
