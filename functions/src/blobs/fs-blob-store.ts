import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isValidObjectName, type BlobStore, type SignedTarget } from './blob-store.js';

/**
 * The embedded blob store: a local directory behind `/api/blobs/{object}`, with URLs signed by
 * HMAC-SHA256 over (method, object, expiry, content type) — the same contract as Cloud Storage V4
 * signed URLs: one object, one method, an expiry, no other credential.
 */
export class FsBlobStore implements BlobStore {
  readonly kind = 'fs' as const;

  constructor(
    private readonly dir: string,
    private readonly publicUrl: string,
    private readonly secret: string,
    private readonly now: () => number = Date.now,
  ) {}

  private sign(method: string, object: string, expires: number, contentType: string): string {
    return createHmac('sha256', this.secret).update(`${method}\n${object}\n${expires}\n${contentType}`).digest('base64url');
  }

  private target(method: 'PUT' | 'GET', object: string, contentType: string, ttlS: number): SignedTarget {
    const expires = Math.floor(this.now() / 1000) + Math.max(1, Math.round(ttlS));
    const q = new URLSearchParams({ method, expires: String(expires), ct: contentType, sig: this.sign(method, object, expires, contentType) });
    return {
      url: `${this.publicUrl.replace(/\/$/, '')}/api/blobs/${object}?${q}`,
      object,
      method,
      headers: method === 'PUT' ? { 'content-type': contentType } : {},
      expires_at: new Date(expires * 1000).toISOString(),
    };
  }

  async signUpload(object: string, contentType: string, ttlS: number): Promise<SignedTarget> {
    return this.target('PUT', object, contentType, ttlS);
  }

  async signDownload(object: string, ttlS: number): Promise<SignedTarget> {
    return this.target('GET', object, '', ttlS);
  }

  /** Checks a request against its signature; returns a reason when it must be refused. */
  verify(method: string, object: string, query: URLSearchParams, contentType: string | undefined): string | null {
    if (!isValidObjectName(object)) return 'invalid object name';
    const signedMethod = query.get('method');
    const expires = Number(query.get('expires'));
    const ct = query.get('ct') ?? '';
    const sig = query.get('sig') ?? '';
    const effective = method === 'HEAD' ? 'GET' : method;
    if (signedMethod !== effective) return `this URL is signed for ${signedMethod ?? 'nothing'}, not ${method}`;
    if (!Number.isInteger(expires)) return 'missing expiry';
    const expected = Buffer.from(this.sign(effective, object, expires, ct));
    const given = Buffer.from(sig);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'signature does not match';
    if (expires * 1000 <= this.now()) return 'signed URL expired';
    if (effective === 'PUT' && (contentType ?? '').split(';')[0]!.trim() !== ct) return `content-type must be ${ct}`;
    return null;
  }

  private path(object: string): string {
    return join(this.dir, ...object.split('/'));
  }

  async put(object: string, data: Buffer): Promise<void> {
    const p = this.path(object);
    await mkdir(dirname(p), { recursive: true });
    const tmp = `${p}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, data);
    await rename(tmp, p); // readers never see a half-written object
  }

  async get(object: string): Promise<Buffer | null> {
    try {
      return await readFile(this.path(object));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }
}
