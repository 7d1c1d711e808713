import type { JobStatus } from '@lab-relay/protocol';
import type { Job, Versioned } from '../jobs/job.js';

export interface AgentRecord {
  agent_id: string;
  last_seen_at: number;
  last_heartbeat_at: number | null;
  current_request_id: string | null;
}

export interface ListPage {
  items: Job[];
  /** Opaque; pass back to get the next page. */
  next_cursor: string | null;
}

/**
 * What a store does: load, query candidates and compare-and-set. Job semantics live in
 * jobs/transitions.ts so every store behaves the same (proved by test/stores/contract.ts).
 */
export interface JobStore {
  readonly kind: 'sqlite' | 'firestore';
  get(id: string): Promise<Versioned | null>;
  /** The request the series points at (its newest run), if any. */
  currentForSeries(seriesId: string): Promise<Versioned | null>;
  /**
   * Creates `job` and points its series at it, provided the series still points at `expected`
   * (null: at nothing) at that version. `replaced` (a new state for `expected`) is written in the
   * same atomic step. Returns false when someone else changed the series first.
   */
  createForSeries(job: Job, expected: Versioned | null, replaced?: Job): Promise<boolean>;
  /** Writes `next` if the stored job is still at `version`; returns the new version, or null when it lost. */
  update(next: Job, version: string): Promise<Versioned | null>;
  /**
   * Claim candidates: pending jobs by priority (highest first) then run_at (oldest first), including
   * ones not yet due (the caller filters and learns the next due time), and processing jobs whose lease
   * ran out by `now`.
   */
  claimCandidates(now: number, limit: number): Promise<Versioned[]>;
  /** Pending jobs past their TTL and processing jobs whose lease ran out. */
  sweepCandidates(now: number, limit: number): Promise<Versioned[]>;
  list(opts: { status?: JobStatus | undefined; limit: number; cursor?: string | undefined }): Promise<ListPage>;
  counts(): Promise<Record<JobStatus, number>>;
  oldestPending(): Promise<Job | null>;
  touchAgent(rec: AgentRecord): Promise<void>;
  agentsSince(since: number): Promise<AgentRecord[]>;
  /** Cross-instance wake-up: calls `onQueued` when a job may have become claimable. */
  watchQueue?(onQueued: () => void): () => void;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A cursor is the position of the last item: (created_at, id), newest first. */
export function encodeCursor(job: Pick<Job, 'created_at' | 'id'>): string {
  return Buffer.from(JSON.stringify([job.created_at, job.id])).toString('base64url');
}

export class BadCursorError extends Error {
  override name = 'BadCursorError';
}

export function decodeCursor(cursor: string): { created_at: number; id: string } {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && Number.isFinite(v[0]) && typeof v[1] === 'string') {
      return { created_at: v[0] as number, id: v[1] };
    }
  } catch {
    /* fall through to the error below */
  }
  throw new BadCursorError('cursor is not one this API issued');
}
