import type { Storage } from '@google-cloud/storage';
import type { BlobStore, SignedTarget } from './blob-store.js';

/**
 * Cloud Storage through V4 signed URLs. With a service-account key the library signs locally; on
 * Cloud Functions (no key) it calls IAM signBlob, which needs roles/iam.serviceAccountTokenCreator
 * on the function's own service account.
 */
export class GcsBlobStore implements BlobStore {
  readonly kind = 'gcs' as const;

  constructor(
    private readonly storage: Storage,
    private readonly bucket: string,
    /** Overrides the host in signed URLs (tests: a loopback verifier; production: unset). */
    private readonly host?: string,
  ) {}

  private async sign(object: string, action: 'write' | 'read', ttlS: number, contentType?: string): Promise<SignedTarget> {
    const expires = Date.now() + Math.max(1, Math.round(ttlS)) * 1000;
    const [url] = await this.storage
      .bucket(this.bucket)
      .file(object)
      .getSignedUrl({ version: 'v4', action, expires, ...(contentType ? { contentType } : {}), ...(this.host ? { host: this.host } : {}) });
    return {
      url,
      object,
      method: action === 'write' ? 'PUT' : 'GET',
      headers: contentType ? { 'content-type': contentType } : {},
      expires_at: new Date(expires).toISOString(),
    };
  }

  signUpload(object: string, contentType: string, ttlS: number): Promise<SignedTarget> {
    return this.sign(object, 'write', ttlS, contentType);
  }

  signDownload(object: string, ttlS: number): Promise<SignedTarget> {
    return this.sign(object, 'read', ttlS);
  }
}
