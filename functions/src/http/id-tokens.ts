import { initializeApp, type App } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';

/** What people may do when they sign in (custom claim `role`, or `roles: [...]`). */
export type Permission = 'clinician' | 'operator';

export interface SignedInUser {
  uid: string;
  permissions: Set<Permission>;
}

export class IdTokenError extends Error {
  override name = 'IdTokenError';
}

export interface IdTokenVerifier {
  verify(token: string): Promise<SignedInUser>;
}

/** A JWT has three dot-separated parts; anything else is not worth a verification round-trip. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token) && token.length < 8192;
}

/**
 * Firebase Authentication ID tokens, verified by firebase-admin (Google's signing keys in
 * production; the Auth emulator when FIREBASE_AUTH_EMULATOR_HOST is set). Revocation and disabled
 * accounts are checked too, so removing a person's access takes effect at once.
 */
export class FirebaseIdTokens implements IdTokenVerifier {
  private readonly app: App;

  constructor(projectId: string) {
    this.app = initializeApp({ projectId }, `lab-relay-auth-${projectId}-${Math.random().toString(36).slice(2)}`);
  }

  async verify(token: string): Promise<SignedInUser> {
    let claims: Record<string, unknown> & { uid: string };
    try {
      claims = await getAuth(this.app).verifyIdToken(token, true);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (code === 'auth/id-token-expired') throw new IdTokenError('sign-in expired; sign in again');
      if (code === 'auth/id-token-revoked' || code === 'auth/user-disabled') throw new IdTokenError('access was revoked');
      throw new IdTokenError('invalid token');
    }
    const permissions = new Set<Permission>();
    const named = [claims.role, ...(Array.isArray(claims.roles) ? claims.roles : [])];
    for (const r of named) if (r === 'clinician' || r === 'operator') permissions.add(r);
    // Operators run the service; they may also do what clinicians do.
    if (permissions.has('operator')) permissions.add('clinician');
    return { uid: claims.uid, permissions };
  }
}
