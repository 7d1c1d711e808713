import type { FsBlobStore } from '../blobs/fs-blob-store.js';
import type { Role } from '../http/auth.js';
import type { Permission } from '../http/id-tokens.js';
import type { ApiRequest, ApiResponse } from '../http/types.js';
import type { Logger } from '../log.js';
import type { JobService } from '../service/job-service.js';

export interface RouteContext {
  req: ApiRequest;
  params: Record<string, string>;
  /** The request body parsed as JSON (undefined when empty). */
  body: unknown;
  service: JobService;
  /** The calling agent's name (agent routes). */
  agentId: string;
  log: Logger;
  /** The embedded blob store, when the API serves blobs itself (BLOB_STORE=fs). */
  fsBlobs: FsBlobStore | null;
  blobMaxBytes: number;
  /** What /api/web-config tells the page (sign-in method, and locally the handed-off token). */
  webConfig: WebConfig;
}

export interface WebConfig {
  auth: 'token' | 'firebase';
  /** Only with WEB_TOKEN_HANDOFF on a loopback API. */
  token?: string;
  firebase?: { apiKey: string; authDomain: string; projectId: string; authEmulatorUrl?: string };
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'HEAD';
  /** Path segments below /api; `:name` captures one segment, a final `*name` the rest of the path. */
  path: string;
  /** Who may call it; null for open endpoints (healthz). */
  role: Role | null;
  /** For people signed in with Firebase (client routes): the permission needed. Static client tokens may do everything. */
  permission?: Permission;
  handle(ctx: RouteContext): Promise<ApiResponse>;
}

export const json = (status: number, body: unknown): ApiResponse => ({ status, body });
