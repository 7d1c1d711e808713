import { createHash } from 'node:crypto';
import { FieldPath, Timestamp, type DocumentSnapshot, type Firestore } from '@google-cloud/firestore';
import { JOB_STATUSES, type JobStatus } from '@lab-relay/protocol';
import type { Job, Versioned } from '../jobs/job.js';
import { decodeCursor, encodeCursor, type AgentRecord, type JobStore, type ListPage } from './job-store.js';

/** gRPC status codes the store turns into "lost the race". */
const FAILED_PRECONDITION = 9;
const NOT_FOUND = 5;
const ABORTED = 10;

/**
 * Firestore store. Claims never run a query inside a transaction (that lock-times-out under
 * contention): callers read a page of candidates and update one with a `lastUpdateTime`
 * precondition, which is the compare-and-set the job service retries on.
 * `result` and `last_completion` are stored as JSON strings: an agent's result may hold nested
 * arrays or keys Firestore maps cannot.
 */
export class FirestoreJobStore implements JobStore {
  readonly kind = 'firestore' as const;
  private readonly jobs;
  private readonly series;
  private readonly agents;
  private readonly unsubs = new Set<() => void>();

  constructor(
    private readonly db: Firestore,
    opts: { prefix?: string } = {},
  ) {
    const p = opts.prefix ?? '';
    this.jobs = db.collection(`${p}jobs`);
    this.series = db.collection(`${p}series`);
    this.agents = db.collection(`${p}agents`);
  }

  private versioned(snap: DocumentSnapshot): Versioned | null {
    if (!snap.exists || !snap.updateTime) return null;
    return { job: fromDoc(snap.data()!), version: versionOf(snap.updateTime) };
  }

  private seriesRef(seriesId: string) {
    // Series ids may contain characters document ids cannot ('/', '__x__'): key by their hash.
    return this.series.doc(createHash('sha256').update(seriesId).digest('hex'));
  }

  async get(id: string): Promise<Versioned | null> {
    return this.versioned(await this.jobs.doc(id).get());
  }

  async currentForSeries(seriesId: string): Promise<Versioned | null> {
    const s = await this.seriesRef(seriesId).get();
    const id = s.exists ? (s.get('request_id') as string) : null;
    return id ? this.get(id) : null;
  }

  async createForSeries(job: Job, expected: Versioned | null, replaced?: Job): Promise<boolean> {
    const sref = this.seriesRef(job.series_id);
    return this.db.runTransaction(async (tx) => {
      const s = await tx.get(sref);
      const current = s.exists ? (s.get('request_id') as string) : null;
      if (current !== (expected?.job.id ?? null)) return false;
      if (expected) {
        const cur = await tx.get(this.jobs.doc(expected.job.id));
        if (!cur.updateTime || versionOf(cur.updateTime) !== expected.version) return false;
        if (replaced) tx.update(this.jobs.doc(expected.job.id), toDoc(replaced));
      }
      tx.create(this.jobs.doc(job.id), toDoc(job));
      tx.set(sref, { series_id: job.series_id, request_id: job.id });
      return true;
    });
  }

  async update(next: Job, version: string): Promise<Versioned | null> {
    try {
      const w = await this.jobs.doc(next.id).update(toDoc(next), { lastUpdateTime: parseVersion(version) });
      return { job: next, version: versionOf(w.writeTime) };
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === FAILED_PRECONDITION || code === NOT_FOUND || code === ABORTED) return null;
      throw err;
    }
  }

  async claimCandidates(now: number, limit: number): Promise<Versioned[]> {
    const [expired, pending] = await Promise.all([
      this.jobs.where('status', '==', 'processing').where('lease_expires_at', '<=', now).orderBy('lease_expires_at').limit(limit).get(),
      this.jobs.where('status', '==', 'pending').orderBy('priority', 'desc').orderBy('run_at').limit(limit).get(),
    ]);
    return [...expired.docs, ...pending.docs].map((d) => this.versioned(d)!);
  }

  async sweepCandidates(now: number, limit: number): Promise<Versioned[]> {
    const [ttl, lease] = await Promise.all([
      this.jobs.where('status', '==', 'pending').where('expires_at', '<=', now).orderBy('expires_at').limit(limit).get(),
      this.jobs.where('status', '==', 'processing').where('lease_expires_at', '<=', now).orderBy('lease_expires_at').limit(limit).get(),
    ]);
    return [...ttl.docs, ...lease.docs].map((d) => this.versioned(d)!);
  }

  async list(opts: { status?: JobStatus | undefined; limit: number; cursor?: string | undefined }): Promise<ListPage> {
    let q = opts.status ? this.jobs.where('status', '==', opts.status) : this.jobs.orderBy('created_at', 'desc');
    if (opts.status) q = q.orderBy('created_at', 'desc');
    q = q.orderBy(FieldPath.documentId(), 'desc');
    if (opts.cursor) {
      const c = decodeCursor(opts.cursor);
      q = q.startAfter(c.created_at, c.id);
    }
    const snap = await q.limit(opts.limit + 1).get();
    const jobs = snap.docs.map((d) => fromDoc(d.data()));
    const more = jobs.length > opts.limit;
    const items = more ? jobs.slice(0, opts.limit) : jobs;
    return { items, next_cursor: more ? encodeCursor(items[items.length - 1]!) : null };
  }

  async counts(): Promise<Record<JobStatus, number>> {
    const entries = await Promise.all(
      JOB_STATUSES.map(async (s) => [s, (await this.jobs.where('status', '==', s).count().get()).data().count] as const),
    );
    return Object.fromEntries(entries) as Record<JobStatus, number>;
  }

  async oldestPending(): Promise<Job | null> {
    const snap = await this.jobs.where('status', '==', 'pending').orderBy('created_at').limit(1).get();
    return snap.empty ? null : fromDoc(snap.docs[0]!.data());
  }

  async touchAgent(rec: AgentRecord): Promise<void> {
    const { last_heartbeat_at, ...rest } = rec;
    await this.agents.doc(rec.agent_id).set(last_heartbeat_at === null ? rest : rec, { merge: true });
  }

  async agentsSince(since: number): Promise<AgentRecord[]> {
    const snap = await this.agents.where('last_seen_at', '>=', since).get();
    return snap.docs
      .map((d) => {
        const v = d.data();
        return {
          agent_id: v.agent_id as string,
          last_seen_at: v.last_seen_at as number,
          last_heartbeat_at: (v.last_heartbeat_at as number | undefined) ?? null,
          current_request_id: (v.current_request_id as string | null | undefined) ?? null,
        };
      })
      .sort((a, b) => a.agent_id.localeCompare(b.agent_id));
  }

  /**
   * Wakes long-polls on every API instance: a listener on the newest claimable-soon pending job
   * fires when a job is queued or re-queued anywhere, not only through this instance.
   */
  watchQueue(onQueued: () => void): () => void {
    let unsub: (() => void) | null = null;
    let stopped = false;
    const listen = () => {
      unsub = this.jobs
        .where('status', '==', 'pending')
        .orderBy('run_at', 'desc')
        .limit(1)
        .onSnapshot(
          () => onQueued(),
          () => {
            // A broken listen stream (network, deploy): long-polls still re-check on their own timer.
            unsub = null;
            if (!stopped) setTimeout(listen, 2000).unref();
          },
        );
    };
    listen();
    const stop = () => {
      stopped = true;
      unsub?.();
      this.unsubs.delete(stop);
    };
    this.unsubs.add(stop);
    return stop;
  }

  async ping(): Promise<void> {
    await this.jobs.limit(1).select().get();
  }

  async close(): Promise<void> {
    for (const u of [...this.unsubs]) u();
    await this.db.terminate();
  }
}

function versionOf(t: Timestamp): string {
  return `${t.seconds}:${t.nanoseconds}`;
}

function parseVersion(v: string): Timestamp {
  const [s, n] = v.split(':').map(Number);
  return new Timestamp(s!, n!);
}

function toDoc(job: Job): Record<string, unknown> {
  return {
    ...job,
    result: job.result === null ? null : JSON.stringify(job.result),
    last_completion: job.last_completion === null ? null : JSON.stringify(job.last_completion),
  };
}

function fromDoc(d: Record<string, unknown>): Job {
  return {
    ...(d as unknown as Job),
    result: typeof d.result === 'string' ? (JSON.parse(d.result) as Record<string, unknown>) : null,
    last_completion: typeof d.last_completion === 'string' ? JSON.parse(d.last_completion) : null,
  };
}
