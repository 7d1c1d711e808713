import { randomBytes } from 'node:crypto';

/** Request ids: time-ordered (readable in logs, roughly sortable) with 80 random bits. */
export function newRequestId(now: number = Date.now()): string {
  return now.toString(36).padStart(9, '0') + randomBytes(10).toString('hex').slice(0, 16);
}

/** Lease tokens are bearer secrets for one attempt: 256 random bits. */
export function newLeaseToken(): string {
  return randomBytes(32).toString('base64url');
}
