import { z } from 'zod';

/**
 * API configuration: environment, else default, then one zod check so a bad value fails at start-up
 * with a readable message instead of at the first request.
 */
const TokenList = z
  .string()
  .default('')
  .transform((s) => s.split(',').map((t) => t.trim()).filter(Boolean))
  .refine((l) => l.every((t) => t.length >= 16), 'every token must be at least 16 characters');

const ConfigShape = z.object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    HOST: z.string().default('127.0.0.1'),
    JOB_STORE: z.enum(['sqlite', 'firestore']).default('sqlite'),
    SQLITE_PATH: z.string().min(1).default('.data/jobs.sqlite'),
    GOOGLE_CLOUD_PROJECT: z.string().optional(),
    FIRESTORE_DATABASE: z.string().default('(default)'),
    FIRESTORE_COLLECTION_PREFIX: z.string().regex(/^[A-Za-z0-9_-]*$/).default(''),
    INFERENCE_AGENT_TOKENS: TokenList,
    INFERENCE_CLIENT_TOKENS: TokenList,
    CORS_ORIGINS: z
      .string()
      .default('')
      .transform((s) => s.split(',').map((t) => t.trim()).filter(Boolean)),
    LEASE_SECONDS: z.coerce.number().min(2).max(3600).default(120),
    PENDING_TTL_SECONDS: z.coerce.number().min(1).default(24 * 3600),
    MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
    RETRY_BASE_SECONDS: z.coerce.number().min(0).default(10),
    RETRY_MAX_SECONDS: z.coerce.number().min(0).default(600),
    /** Agents seen within this window are listed by /api/metrics. */
    AGENT_SEEN_WINDOW_SECONDS: z.coerce.number().min(1).default(300),
    LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARNING', 'ERROR']).default('INFO'),
    /** How long a request waits on the job store before answering 503 (a long-poll: its wait plus this). */
    STORE_DEADLINE_SECONDS: z.coerce.number().min(1).max(60).default(7),
    /** Folder of the web page, served at / by `npm run api`/`npm start` (Firebase Hosting in the cloud). */
    WEB_DIR: z.string().min(1).optional(),
    /**
     * Local demo only: /api/web-config hands the page a client token so nobody has to sign in.
     * Refused unless the API listens on loopback.
     */
    WEB_TOKEN_HANDOFF: z
      .enum(['true', 'false', '1', '0'])
      .default('false')
      .transform((v) => v === 'true' || v === '1'),
    /** Accept Firebase Authentication ID tokens from people on client endpoints. */
    FIREBASE_AUTH: z
      .enum(['true', 'false', '1', '0'])
      .default('false')
      .transform((v) => v === 'true' || v === '1'),
    FIREBASE_API_KEY: z.string().optional(),
    FIREBASE_AUTH_DOMAIN: z.string().optional(),
    BLOB_STORE: z.enum(['none', 'fs', 'gcs']).default('fs'),
    BLOB_DIR: z.string().min(1).default('.data/blobs'),
    /** The API's URL as lab agents and browsers reach it (fs blob URLs point here). */
    PUBLIC_URL: z.string().url().optional(),
    BLOB_SIGNING_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    GCS_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/, 'is not a valid bucket name').optional(),
    UPLOAD_URL_TTL_SECONDS: z.coerce.number().int().min(10).max(7 * 24 * 3600).default(900),
    DOWNLOAD_URL_TTL_SECONDS: z.coerce.number().int().min(10).max(7 * 24 * 3600).default(600),
    BLOB_MAX_BYTES: z.coerce.number().int().min(1024).default(64 * 1024 * 1024),
});

const ConfigSchema = ConfigShape.refine((c) => !c.WEB_TOKEN_HANDOFF || ['127.0.0.1', 'localhost', '::1'].includes(c.HOST), {
  message: 'WEB_TOKEN_HANDOFF hands out a client token: only allowed when HOST is loopback',
  path: ['WEB_TOKEN_HANDOFF'],
}).refine((c) => !c.FIREBASE_AUTH || c.GOOGLE_CLOUD_PROJECT, {
  message: 'FIREBASE_AUTH=true needs GOOGLE_CLOUD_PROJECT',
  path: ['GOOGLE_CLOUD_PROJECT'],
}).refine((c) => c.BLOB_STORE !== 'gcs' || c.GCS_BUCKET, {
  message: 'BLOB_STORE=gcs needs GCS_BUCKET',
  path: ['GCS_BUCKET'],
}).refine((c) => c.JOB_STORE !== 'firestore' || c.GOOGLE_CLOUD_PROJECT, {
    message: 'JOB_STORE=firestore needs GOOGLE_CLOUD_PROJECT',
    path: ['GOOGLE_CLOUD_PROJECT'],
  });

export type ApiConfig = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(ConfigShape.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  // Cloud Functions sets GCLOUD_PROJECT on older runtimes.
  if (!picked.GOOGLE_CLOUD_PROJECT && env.GCLOUD_PROJECT) picked.GOOGLE_CLOUD_PROJECT = env.GCLOUD_PROJECT;
  const r = ConfigSchema.safeParse(picked);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new ConfigError(`Invalid API configuration:\n${lines.join('\n')}`);
  }
  return r.data;
}
