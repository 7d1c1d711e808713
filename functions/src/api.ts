import { Firestore } from '@google-cloud/firestore';
import type { ApiConfig } from './config.js';
import { createApp } from './http/app.js';
import { TokenAuth } from './http/auth.js';
import type { ApiRequest, ApiResponse } from './http/types.js';
import { policyFrom } from './jobs/policy.js';
import { createLogger, type Logger } from './log.js';
import { JobService } from './service/job-service.js';
import { FirestoreJobStore } from './stores/firestore-store.js';
import type { JobStore } from './stores/job-store.js';
import { SqliteJobStore } from './stores/sqlite-store.js';

export interface Api {
  handle: (req: ApiRequest) => Promise<ApiResponse>;
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

/** The composition root: configuration -> store -> job service -> HTTP app. */
export function createApi(cfg: ApiConfig, opts: { store?: JobStore; log?: Logger; now?: () => number } = {}): Api {
  const log = opts.log ?? createLogger({ level: cfg.LOG_LEVEL });
  const store = opts.store ?? createStore(cfg);
  const service = new JobService({
    store,
    policy: policyFrom(cfg),
    log,
    agentSeenWindowMs: cfg.AGENT_SEEN_WINDOW_SECONDS * 1000,
    ...(opts.now ? { now: opts.now } : {}),
  });
  const auth = new TokenAuth(cfg.INFERENCE_AGENT_TOKENS, cfg.INFERENCE_CLIENT_TOKENS);
  const handle = createApp({ service, auth, corsOrigins: cfg.CORS_ORIGINS, log });
  return {
    handle,
    service,
    store,
    async close() {
      await service.close();
      await store.close();
    },
  };
}
