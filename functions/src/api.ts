import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import { Storage } from '@google-cloud/storage';
import type { BlobStore } from './blobs/blob-store.js';
import { FsBlobStore } from './blobs/fs-blob-store.js';
import { GcsBlobStore } from './blobs/gcs-blob-store.js';
import type { ApiConfig } from './config.js';
import { bodyLimitFor, createApp } from './http/app.js';
import { FirebaseIdTokens } from './http/id-tokens.js';
import { TokenAuth } from './http/auth.js';
import type { ApiRequest, ApiResponse } from './http/types.js';
import { policyFrom } from './jobs/policy.js';
import { createLogger, type Logger } from './log.js';
import { JobService } from './service/job-service.js';
import { FirestoreJobStore } from './stores/firestore-store.js';
import type { WebConfig } from './routes/route.js';
import type { JobStore } from './stores/job-store.js';
import { SqliteJobStore } from './stores/sqlite-store.js';

export interface Api {
  handle: (req: ApiRequest) => Promise<ApiResponse>;
  /** The largest body the carrier should read for a path. */
  bodyLimit: (path: string) => number;
  blobs: BlobStore | null;
  service: JobService;
  store: JobStore;
  close(): Promise<void>;
}

export function createStore(cfg: ApiConfig): JobStore {
  if (cfg.JOB_STORE === 'firestore') {
    const db = new Firestore({ projectId: cfg.GOOGLE_CLOUD_PROJECT, databaseId: cfg.FIRESTORE_DATABASE });
    return new FirestoreJobStore(db, { prefix: cfg.FIRESTORE_COLLECTION_PREFIX });
  }
  return new SqliteJobStore(cfg.SQLITE_PATH);
}

export function createBlobStore(cfg: ApiConfig, log: Logger, opts: { gcsHost?: string; storage?: Storage } = {}): BlobStore | null {
  if (cfg.BLOB_STORE === 'none') return null;
  if (cfg.BLOB_STORE === 'gcs') return new GcsBlobStore(opts.storage ?? new Storage(), cfg.GCS_BUCKET!, opts.gcsHost);
  let secret = cfg.BLOB_SIGNING_SECRET;
  if (!secret) {
    // URLs signed before a restart stop working; `npm start` persists a secret in .data/tokens.env.
    log.log('WARNING', 'BLOB_SIGNING_SECRET is not set: using a random one until this process exits');
    secret = randomBytes(32).toString('base64url');
  }
  return new FsBlobStore(resolve(cfg.BLOB_DIR), cfg.PUBLIC_URL ?? `http://${cfg.HOST}:${cfg.PORT}`, secret);
}

/** The composition root: configuration -> stores -> job service -> HTTP app. */
export function createApi(
  cfg: ApiConfig,
  opts: { store?: JobStore; blobs?: BlobStore | null; log?: Logger; now?: () => number } = {},
): Api {
  const log = opts.log ?? createLogger({ level: cfg.LOG_LEVEL });
  const store = opts.store ?? createStore(cfg);
  const blobs = opts.blobs !== undefined ? opts.blobs : createBlobStore(cfg, log);
  const service = new JobService({
    store,
    policy: policyFrom(cfg),
    log,
    agentSeenWindowMs: cfg.AGENT_SEEN_WINDOW_SECONDS * 1000,
    ...(opts.now ? { now: opts.now } : {}),
    outputs: blobs ? { store: blobs, uploadTtlS: cfg.UPLOAD_URL_TTL_SECONDS, downloadTtlS: cfg.DOWNLOAD_URL_TTL_SECONDS } : null,
  });
  const auth = new TokenAuth(cfg.INFERENCE_AGENT_TOKENS, cfg.INFERENCE_CLIENT_TOKENS);
  const fsBlobs = blobs instanceof FsBlobStore ? blobs : null;
  const webConfig: WebConfig =
    cfg.FIREBASE_AUTH && cfg.FIREBASE_API_KEY
      ? {
          auth: 'firebase',
          firebase: {
            apiKey: cfg.FIREBASE_API_KEY,
            authDomain: cfg.FIREBASE_AUTH_DOMAIN ?? `${cfg.GOOGLE_CLOUD_PROJECT}.firebaseapp.com`,
            projectId: cfg.GOOGLE_CLOUD_PROJECT!,
            // Development against the Auth emulator: the page's SDK must talk to it too.
            ...(process.env.FIREBASE_AUTH_EMULATOR_HOST ? { authEmulatorUrl: `http://${process.env.FIREBASE_AUTH_EMULATOR_HOST}` } : {}),
          },
        }
      : { auth: 'token', ...(cfg.WEB_TOKEN_HANDOFF && cfg.INFERENCE_CLIENT_TOKENS[0] ? { token: cfg.INFERENCE_CLIENT_TOKENS[0] } : {}) };
  const idTokens = cfg.FIREBASE_AUTH ? new FirebaseIdTokens(cfg.GOOGLE_CLOUD_PROJECT!) : null;
  const handle = createApp({ service, auth, corsOrigins: cfg.CORS_ORIGINS, log, fsBlobs, blobMaxBytes: cfg.BLOB_MAX_BYTES, webConfig, idTokens, deadlineMs: cfg.STORE_DEADLINE_SECONDS * 1000 });
  return {
    handle,
    bodyLimit: (path) => bodyLimitFor(path, cfg.BLOB_MAX_BYTES),
    blobs,
    service,
    store,
    async close() {
      await service.close();
      await store.close();
    },
  };
}
