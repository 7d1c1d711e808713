/**
 * PACS sink settings and factory. Without its own URL/credentials the sink reuses the image source's
 * (orthanc sink <- orthanc source, stow sink <- dicomweb source): the usual case is "the SEG goes back to
 * the PACS the series came from".
 */
import { z } from 'zod';
import { authOf } from '../sources/index.js';
import { configError, resolveSettings, type SourceConfig, type SourceFlags } from '../sources/config.js';
import { OrthancPacsSink } from './pacs-orthanc.js';
import type { PacsSink } from './pacs-sink.js';
import { StowPacsSink } from './pacs-stow.js';

export const PACS_KINDS = ['none', 'orthanc', 'stow'] as const;

export type PacsSettingKey = 'kind' | 'url' | 'user' | 'password' | 'token';

export const PACS_SETTINGS: Array<{ key: PacsSettingKey; flag: string; env: string[]; default: string; help: string; secret?: boolean }> = [
  { key: 'kind', flag: '--pacs <kind>', env: ['AGENT_PACS'], default: 'none', help: 'store the SEG back in a PACS: none, orthanc (REST POST /instances) or stow (DICOMweb STOW-RS); its id becomes seg_instance_id' },
  { key: 'url', flag: '--pacs-url <url>', env: ['AGENT_PACS_URL'], default: 'the source URL when the source is the same kind of server', help: 'Orthanc base URL or DICOMweb root for the SEG' },
  { key: 'user', flag: '--pacs-user <name>', env: ['AGENT_PACS_USER'], default: 'the source user (same URL)', help: 'HTTP Basic user for the PACS sink' },
  { key: 'password', flag: '--pacs-password <password>', env: ['AGENT_PACS_PASSWORD'], default: 'the source password (same URL)', help: 'HTTP Basic password for the PACS sink; never logged', secret: true },
  { key: 'token', flag: '--pacs-token <token>', env: ['AGENT_PACS_TOKEN'], default: 'the source token (same URL)', help: 'Bearer token for the PACS sink; never logged', secret: true },
];

const httpUrl = z
  .string({ error: 'is required (or use a source of the same kind, whose URL is then reused)' })
  .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL')
  .refine((u) => !URL.canParse(u) || (!new URL(u).username && !new URL(u).password), 'must not contain credentials');

export const PacsConfigSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }),
  z.object({
    kind: z.enum(['orthanc', 'stow']),
    url: httpUrl,
    user: z.string().optional(),
    password: z.string().optional(),
    token: z.string().optional(),
    timeout: z.number().min(1),
    attempts: z.number().int().min(1),
  }),
], { error: `must be one of ${PACS_KINDS.join(', ')}` });

export type PacsConfig = z.infer<typeof PacsConfigSchema>;

export function resolvePacsConfig(flags: SourceFlags, env: Record<string, string | undefined> = process.env, source?: SourceConfig): PacsConfig {
  const { raw } = resolveSettings(PACS_SETTINGS, flags, env);
  const kind = raw.kind ?? 'none';
  const sameServer = source && source.kind !== 'folder' && ((kind === 'orthanc' && source.kind === 'orthanc') || (kind === 'stow' && source.kind === 'dicomweb'));
  const reuse = sameServer && (!raw.url || raw.url.replace(/\/+$/, '') === source.url.replace(/\/+$/, ''));
  const ownAuth = raw.user !== undefined || raw.token !== undefined;
  const input = {
    kind,
    url: raw.url ?? (sameServer ? source.url : undefined),
    ...(reuse && !ownAuth ? { user: source.user, password: source.password, token: source.token } : { user: raw.user, password: raw.password, token: raw.token }),
    timeout: source && source.kind !== 'folder' ? source.timeout : 30,
    attempts: source && source.kind !== 'folder' ? source.attempts : 5,
  };
  const r = PacsConfigSchema.safeParse(input);
  if (!r.success) {
    const issues = r.error.issues.map((i) => (i.path.length === 0 ? { ...i, path: ['kind'] } : i));
    throw configError(issues, PACS_SETTINGS, 'PACS sink');
  }
  return r.data;
}

export function createPacsSink(c: PacsConfig): PacsSink | undefined {
  if (c.kind === 'none') return undefined;
  const o = { baseUrl: c.url, auth: authOf(c), timeoutMs: c.timeout * 1000, attempts: c.attempts };
  return c.kind === 'orthanc' ? new OrthancPacsSink(o) : new StowPacsSink(o);
}
