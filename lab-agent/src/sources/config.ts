/**
 * Image source settings: a flag, else the environment, else a default; then one zod check whose messages
 * name the flag and variable. The agent CLI adds SOURCE_SETTINGS to its options; a runner factory that
 * only has the environment calls resolveSourceConfig({}, env). No message ever contains a secret.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';

export const SOURCE_KINDS = ['orthanc', 'dicomweb', 'folder'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** Orthanc's standard HTTP port on the lab PC itself. */
export const DEFAULT_ORTHANC_URL = 'http://127.0.0.1:8042';

export interface SourceSettingSpec {
  key: SourceSettingKey;
  /** Commander syntax, e.g. "--source <kind>". */
  flag: string;
  /** Environment variables, first wins. */
  env: string[];
  default: string;
  help: string;
  secret?: boolean;
}

export type SourceSettingKey = 'kind' | 'url' | 'user' | 'password' | 'token' | 'root' | 'concurrency' | 'timeout' | 'attempts';

export const SOURCE_SETTINGS: SourceSettingSpec[] = [
  { key: 'kind', flag: '--source <kind>', env: ['AGENT_SOURCE'], default: 'orthanc', help: 'where the onnx runner reads series: orthanc (ids: Orthanc series IDs or SeriesInstanceUIDs), dicomweb (ids: STUDY_UID:SERIES_UID or SERIES_UID) or folder (ids: sub-folder names); kind:location also works, e.g. folder:/data' },
  { key: 'url', flag: '--source-url <url>', env: ['AGENT_SOURCE_URL', 'ORTHANC_URL'], default: `${DEFAULT_ORTHANC_URL} for orthanc`, help: 'Orthanc base URL, or the DICOMweb root (e.g. http://pacs:8042/dicom-web); no credentials in it' },
  { key: 'user', flag: '--source-user <name>', env: ['AGENT_SOURCE_USER', 'ORTHANC_USER'], default: '', help: 'HTTP Basic user for the source' },
  { key: 'password', flag: '--source-password <password>', env: ['AGENT_SOURCE_PASSWORD', 'ORTHANC_PASSWORD'], default: '', help: 'HTTP Basic password (prefer the environment or .env to a flag); never logged', secret: true },
  { key: 'token', flag: '--source-token <token>', env: ['AGENT_SOURCE_TOKEN'], default: '', help: 'Bearer token for the source instead of user/password (e.g. a DICOMweb gateway); never logged', secret: true },
  { key: 'root', flag: '--source-root <dir>', env: ['AGENT_SOURCE_ROOT'], default: '(required for folder)', help: 'folder source: the directory whose sub-folders are the series ids' },
  { key: 'concurrency', flag: '--source-concurrency <n>', env: ['AGENT_SOURCE_CONCURRENCY'], default: '4', help: 'files downloaded (or copied) at the same time per series' },
  { key: 'timeout', flag: '--source-timeout <s>', env: ['AGENT_SOURCE_TIMEOUT'], default: '30', help: 'seconds to wait for a response, or for the next bytes of one, before retrying' },
  { key: 'attempts', flag: '--source-attempts <n>', env: ['AGENT_SOURCE_ATTEMPTS'], default: '5', help: 'tries per request on transient errors (network, timeout, 5xx, 429), with jittered backoff' },
];

const httpUrl = z
  .string()
  .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL')
  .refine((u) => !URL.canParse(u) || (!new URL(u).username && !new URL(u).password), 'must not contain credentials; use --source-user/--source-password or --source-token');

const int = (min: number, max: number) =>
  z.coerce.number({ error: 'must be a whole number' }).int('must be a whole number').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

const remote = {
  url: httpUrl,
  user: z.string().optional(),
  password: z.string().optional(),
  token: z.string().optional(),
  concurrency: int(1, 64),
  timeout: z.coerce.number({ error: 'must be a number of seconds' }).min(1, 'must be at least 1 second').max(3600, 'must be at most 3600 seconds'),
  attempts: int(1, 20),
};

export const SourceConfigSchema = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('orthanc'), ...remote }),
    z.object({ kind: z.literal('dicomweb'), ...remote }),
    z.object({ kind: z.literal('folder'), root: z.string({ error: 'is required for the folder source' }).min(1, 'is required for the folder source'), concurrency: int(1, 64) }),
  ], { error: `must be one of ${SOURCE_KINDS.join(', ')}` })
  .superRefine((c, ctx) => {
    if (c.kind === 'folder') return;
    if (c.token && (c.user || c.password)) ctx.addIssue({ code: 'custom', path: ['token'], message: 'give either a token or a user/password, not both' });
    if (Boolean(c.user) !== Boolean(c.password)) ctx.addIssue({ code: 'custom', path: [c.user ? 'password' : 'user'], message: 'user and password go together' });
  });

export type SourceConfig = z.infer<typeof SourceConfigSchema>;
export type RemoteSourceConfig = Extract<SourceConfig, { kind: 'orthanc' | 'dicomweb' }>;

/** Flags as commander hands them over: camelCase of the flag name without "--", e.g. sourceUrl. */
export type SourceFlags = Partial<Record<string, string | undefined>>;

export function flagKey(spec: { flag: string }): string {
  return spec.flag.split(' ')[0]!.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Picks flag, else environment, else default for each setting; the result is validated. */
export function resolveSettings<K extends string>(
  specs: ReadonlyArray<{ key: K; flag: string; env: string[] }>,
  flags: SourceFlags,
  env: Record<string, string | undefined>,
): { raw: Partial<Record<K, string>>; from: Partial<Record<K, string>> } {
  const raw: Partial<Record<K, string>> = {};
  const from: Partial<Record<K, string>> = {};
  for (const s of specs) {
    const f = flags[flagKey(s)];
    if (f !== undefined && f !== '') {
      raw[s.key] = f;
      from[s.key] = s.flag.split(' ')[0]!;
      continue;
    }
    for (const name of s.env) {
      const v = env[name]?.trim();
      if (v) {
        raw[s.key] = v;
        from[s.key] = name;
        break;
      }
    }
  }
  return { raw, from };
}

/** Turns zod issues into the agent's ConfigError format, naming flag and variables, never values. */
export function configError(issues: z.core.$ZodIssue[], specs: ReadonlyArray<{ key: string; flag: string; env: string[] }>, title: string): ConfigError {
  const lines = issues.map((i) => {
    const key = String(i.path[0] ?? 'kind');
    const spec = specs.find((s) => s.key === key);
    const name = spec ? `${spec.flag.split(' ')[0]} / ${spec.env.join(' / ')}` : key;
    return `  ${name}: ${i.message}`;
  });
  return new ConfigError(`Invalid ${title} configuration:\n${lines.join('\n')}`);
}

export function resolveSourceConfig(flags: SourceFlags, env: Record<string, string | undefined> = process.env): SourceConfig {
  const { raw } = resolveSettings(SOURCE_SETTINGS, flags, env);
  // "kind:location" (the agent's --source spec, e.g. folder:/data or orthanc:http://pacs:8042): the
  // location fills in the URL or root unless that was given on its own.
  let kind = raw.kind ?? 'orthanc';
  const colon = kind.indexOf(':');
  if (colon > 0) {
    const where = kind.slice(colon + 1);
    kind = kind.slice(0, colon).toLowerCase();
    if (kind === 'folder') raw.root ??= where;
    else raw.url ??= where;
  }
  const input = {
    kind,
    url: raw.url ?? (kind === 'orthanc' ? DEFAULT_ORTHANC_URL : undefined),
    user: raw.user,
    password: raw.password,
    token: raw.token,
    root: raw.root,
    concurrency: raw.concurrency ?? '4',
    timeout: raw.timeout ?? '30',
    attempts: raw.attempts ?? '5',
  };
  const r = SourceConfigSchema.safeParse(input);
  if (!r.success) {
    const issues = r.error.issues.map((i) => (i.path.length === 0 && i.code === 'invalid_union' ? { ...i, path: ['kind'] } : i));
    if (kind === 'dicomweb' && !raw.url) issues.push({ code: 'custom', path: ['url'], message: 'is required for the dicomweb source', input: undefined } as z.core.$ZodIssue);
    throw configError(issues, SOURCE_SETTINGS, 'image source');
  }
  return r.data;
}

/** For the start-up log: where the source is, who it logs in as, no secret. */
export function describeSource(c: SourceConfig): string {
  if (c.kind === 'folder') return `folder ${c.root}`;
  const auth = c.token ? 'bearer token' : c.user ? `user ${c.user}` : 'no auth';
  return `${c.kind} ${c.url} (${auth}, ${c.concurrency} parallel, timeout ${c.timeout} s, ${c.attempts} attempts)`;
}
