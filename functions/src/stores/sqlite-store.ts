import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { JOB_STATUSES, type JobStatus } from '@lab-relay/protocol';
import type { Job, Versioned } from '../jobs/job.js';
import { decodeCursor, encodeCursor, type AgentRecord, type JobStore, type ListPage } from './job-store.js';

/**
 * The embedded store (development, demos, single-machine sites): one SQLite file. The job is kept
 * whole as JSON; the fields the queries filter and sort on are mirrored into indexed columns.
 * better-sqlite3 is synchronous, so every method is one atomic step of the event loop.
 */
export class SqliteJobStore implements JobStore {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly listeners = new Set<() => void>();

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    // Loaded on first use: the Cloud Functions bundle (Firestore) never needs the native module.
    const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
    this.db = new Sqlite(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        series_id TEXT NOT NULL,
        status TEXT NOT NULL,
        priority INTEGER NOT NULL,
        run_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        lease_expires_at INTEGER,
        created_at INTEGER NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, priority DESC, run_at, created_at);
      CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (status, lease_expires_at);
      CREATE INDEX IF NOT EXISTS jobs_ttl ON jobs (status, expires_at);
      CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (created_at DESC, id DESC);
      CREATE INDEX IF NOT EXISTS jobs_status_newest ON jobs (status, created_at DESC, id DESC);
      CREATE TABLE IF NOT EXISTS series (series_id TEXT PRIMARY KEY, request_id TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS agents (
        agent_id TEXT PRIMARY KEY,
        last_seen_at INTEGER NOT NULL,
        last_heartbeat_at INTEGER,
        current_request_id TEXT
      );
    `);
  }

  private row(r: { version: number; doc: string } | undefined): Versioned | null {
    return r ? { job: JSON.parse(r.doc) as Job, version: String(r.version) } : null;
  }

  private insert(job: Job): void {
    this.db
      .prepare(
        `INSERT INTO jobs (id, series_id, status, priority, run_at, expires_at, lease_expires_at, created_at, version, doc)
         VALUES (@id, @series_id, @status, @priority, @run_at, @expires_at, @lease_expires_at, @created_at, 1, @doc)`,
      )
      .run({ ...cols(job), doc: JSON.stringify(job) });
  }

  private cas(next: Job, version: string): number | null {
    const v = Number(version);
    const r = this.db
      .prepare(
        `UPDATE jobs SET status=@status, priority=@priority, run_at=@run_at, expires_at=@expires_at,
           lease_expires_at=@lease_expires_at, version=version+1, doc=@doc
         WHERE id=@id AND version=@v`,
      )
      .run({ ...cols(next), doc: JSON.stringify(next), v });
    return r.changes === 1 ? v + 1 : null;
  }

  async get(id: string): Promise<Versioned | null> {
    return this.row(this.db.prepare('SELECT version, doc FROM jobs WHERE id = ?').get(id) as never);
  }

  async currentForSeries(seriesId: string): Promise<Versioned | null> {
    const r = this.db
      .prepare('SELECT j.version, j.doc FROM series s JOIN jobs j ON j.id = s.request_id WHERE s.series_id = ?')
      .get(seriesId);
    return this.row(r as never);
  }

  async createForSeries(job: Job, expected: Versioned | null, replaced?: Job): Promise<boolean> {
    const ok = this.db.transaction(() => {
      const cur = this.db.prepare('SELECT request_id FROM series WHERE series_id = ?').get(job.series_id) as
        | { request_id: string }
        | undefined;
      if ((cur?.request_id ?? null) !== (expected?.job.id ?? null)) return false;
      if (expected && replaced) {
        if (this.cas(replaced, expected.version) === null) return false;
      } else if (expected) {
        const v = this.db.prepare('SELECT version FROM jobs WHERE id = ?').get(expected.job.id) as { version: number } | undefined;
        if (String(v?.version) !== expected.version) return false;
      }
      this.insert(job);
      this.db
        .prepare('INSERT INTO series (series_id, request_id) VALUES (?, ?) ON CONFLICT(series_id) DO UPDATE SET request_id = excluded.request_id')
        .run(job.series_id, job.id);
      return true;
    })();
    if (ok) this.notify();
    return ok;
  }

  async update(next: Job, version: string): Promise<Versioned | null> {
    const v = this.cas(next, version);
    if (v === null) return null;
    if (next.status === 'pending') this.notify();
    return { job: next, version: String(v) };
  }

  async claimCandidates(now: number, limit: number): Promise<Versioned[]> {
    const pending = this.db
      .prepare(`SELECT version, doc FROM jobs WHERE status = 'pending' ORDER BY priority DESC, run_at, created_at LIMIT ?`)
      .all(limit);
    const expired = this.db
      .prepare(`SELECT version, doc FROM jobs WHERE status = 'processing' AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT ?`)
      .all(now, limit);
    return [...expired, ...pending].map((r) => this.row(r as never)!);
  }

  async sweepCandidates(now: number, limit: number): Promise<Versioned[]> {
    const rows = this.db
      .prepare(
        `SELECT version, doc FROM jobs WHERE status = 'pending' AND expires_at <= @now
         UNION ALL
         SELECT version, doc FROM jobs WHERE status = 'processing' AND lease_expires_at <= @now
         LIMIT @limit`,
      )
      .all({ now, limit });
    return rows.map((r) => this.row(r as never)!);
  }

  async list(opts: { status?: JobStatus | undefined; limit: number; cursor?: string | undefined }): Promise<ListPage> {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: opts.limit + 1 };
    if (opts.status) {
      where.push('status = @status');
      params.status = opts.status;
    }
    if (opts.cursor) {
      const c = decodeCursor(opts.cursor);
      where.push('(created_at < @c_at OR (created_at = @c_at AND id < @c_id))');
      params.c_at = c.created_at;
      params.c_id = c.id;
    }
    const sql = `SELECT version, doc FROM jobs ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
                 ORDER BY created_at DESC, id DESC LIMIT @limit`;
    const jobs = this.db.prepare(sql).all(params).map((r) => this.row(r as never)!.job);
    const more = jobs.length > opts.limit;
    const items = more ? jobs.slice(0, opts.limit) : jobs;
    return { items, next_cursor: more ? encodeCursor(items[items.length - 1]!) : null };
  }

  async counts(): Promise<Record<JobStatus, number>> {
    const out = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    for (const r of this.db.prepare('SELECT status, COUNT(*) AS n FROM jobs GROUP BY status').all() as { status: JobStatus; n: number }[]) {
      out[r.status] = r.n;
    }
    return out;
  }

  async oldestPending(): Promise<Job | null> {
    const r = this.db.prepare(`SELECT version, doc FROM jobs WHERE status = 'pending' ORDER BY created_at LIMIT 1`).get();
    return this.row(r as never)?.job ?? null;
  }

  async touchAgent(rec: AgentRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO agents (agent_id, last_seen_at, last_heartbeat_at, current_request_id)
         VALUES (@agent_id, @last_seen_at, @last_heartbeat_at, @current_request_id)
         ON CONFLICT(agent_id) DO UPDATE SET last_seen_at = excluded.last_seen_at,
           last_heartbeat_at = COALESCE(excluded.last_heartbeat_at, agents.last_heartbeat_at),
           current_request_id = excluded.current_request_id`,
      )
      .run(rec);
  }

  async agentsSince(since: number): Promise<AgentRecord[]> {
    return this.db
      .prepare('SELECT agent_id, last_seen_at, last_heartbeat_at, current_request_id FROM agents WHERE last_seen_at >= ? ORDER BY agent_id')
      .all(since) as AgentRecord[];
  }

  /** One process owns the file, so an in-process signal reaches every waiter. */
  watchQueue(onQueued: () => void): () => void {
    this.listeners.add(onQueued);
    return () => this.listeners.delete(onQueued);
  }

  private notify(): void {
    for (const l of this.listeners) l();
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    this.listeners.clear();
    if (this.db.open) this.db.close();
  }
}

function cols(job: Job) {
  return {
    id: job.id,
    series_id: job.series_id,
    status: job.status,
    priority: job.priority,
    run_at: job.run_at,
    expires_at: job.expires_at,
    lease_expires_at: job.lease_expires_at,
    created_at: job.created_at,
  };
}
