import { createHash, timingSafeEqual } from 'node:crypto';

export type Role = 'agent' | 'client';

/**
 * Bearer tokens by role. Tokens are compared as SHA-256 digests with timingSafeEqual, so neither a
 * token's content nor its length leaks through timing; every configured token is compared each time.
 */
export class TokenAuth {
  private readonly agent: Buffer[];
  private readonly client: Buffer[];

  constructor(agentTokens: string[], clientTokens: string[]) {
    this.agent = agentTokens.map(digest);
    this.client = clientTokens.map(digest);
  }

  /** The roles a bearer token carries (none when missing or unknown). */
  rolesOf(authorization: string | undefined): { roles: Set<Role>; fingerprint: string | null; token: string | null } {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) return { roles: new Set(), fingerprint: null, token: null };
    const d = digest(m[1]!);
    let isAgent = false;
    let isClient = false;
    for (const t of this.agent) isAgent = timingSafeEqual(t, d) || isAgent;
    for (const t of this.client) isClient = timingSafeEqual(t, d) || isClient;
    const fingerprint = d.toString('hex').slice(0, 8);
    const roles = new Set<Role>();
    if (isAgent) roles.add('agent');
    if (isClient) roles.add('client');
    return { roles, fingerprint, token: m[1]! };
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
