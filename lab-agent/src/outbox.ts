/**
 * Results waiting for the API's acknowledgement, one file per result. A file is written atomically
 * (temporary file, fsync, rename, fsync of the folder) before the first send, and removed only once
 * the API answered 2xx, or a final 404/409. So a result survives the API being down, the network
 * dropping, and the agent crashing; and because the same bytes are re-sent, the API recognises a
 * repeat (same lease token, same body) as a replay and never applies it twice.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { CompleteRequest, RequestId } from '@lab-relay/protocol';
import { z } from 'zod';

export const OutboxEntry = z.object({
  v: z.literal(1),
  request_id: RequestId,
  body: CompleteRequest,
  written_at: z.string(),
  agent_id: z.string().optional(),
});
export type OutboxEntry = z.infer<typeof OutboxEntry>;

export interface OutboxItem {
  file: string;
  entry: OutboxEntry;
}

const SUFFIX = '.result.json';
const TMP_PREFIX = '.tmp-';
/** Entries the API can never accept (e.g. 400) are kept here for a person to look at, not deleted. */
export const REJECTED_DIR = 'rejected';

export class Outbox {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    // A temporary file is what a crash mid-write leaves; its rename never happened, so it is no result.
    for (const name of await fs.readdir(this.dir)) {
      if (name.startsWith(TMP_PREFIX)) await fs.rm(join(this.dir, name), { force: true });
    }
  }

  /** Writes the entry durably and returns its file name. */
  async put(entry: OutboxEntry): Promise<string> {
    const checked = OutboxEntry.parse(entry);
    const lease = (checked.body.lease_token ?? 'unfenced').replace(/[^A-Za-z0-9_-]/g, '').slice(0, 12);
    const name = `${checked.request_id}.${lease}${SUFFIX}`;
    const tmp = join(this.dir, `${TMP_PREFIX}${randomBytes(6).toString('hex')}`);
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(checked) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, join(this.dir, name));
    await syncDir(this.dir);
    return name;
  }

  /** Entries in the order they were written; unreadable files are moved aside with a reason. */
  async list(onBad?: (file: string, reason: string) => void): Promise<OutboxItem[]> {
    let names: string[];
    try {
      names = (await fs.readdir(this.dir)).filter((n) => n.endsWith(SUFFIX));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const items: Array<OutboxItem & { mtime: number }> = [];
    for (const file of names) {
      const path = join(this.dir, file);
      try {
        const [text, st] = await Promise.all([fs.readFile(path, 'utf8'), fs.stat(path)]);
        const r = OutboxEntry.safeParse(JSON.parse(text));
        if (!r.success) throw new Error(r.error.issues[0]?.message ?? 'invalid entry');
        items.push({ file, entry: r.data, mtime: st.mtimeMs });
      } catch (err) {
        const reason = `unreadable outbox entry: ${(err as Error).message}`;
        await this.reject(file, reason);
        onBad?.(file, reason);
      }
    }
    return items.sort((a, b) => a.mtime - b.mtime || a.file.localeCompare(b.file)).map(({ file, entry }) => ({ file, entry }));
  }

  async has(file: string): Promise<boolean> {
    try {
      await fs.access(join(this.dir, file));
      return true;
    } catch {
      return false;
    }
  }

  /** Removes an acknowledged entry. */
  async remove(file: string): Promise<void> {
    await fs.rm(join(this.dir, file), { force: true });
    await syncDir(this.dir);
  }

  /** Moves an entry the API will never accept into `rejected/`, with the reason beside it. */
  async reject(file: string, reason: string): Promise<void> {
    const dir = join(this.dir, REJECTED_DIR);
    await fs.mkdir(dir, { recursive: true });
    await fs.rename(join(this.dir, file), join(dir, file)).catch(() => undefined);
    await fs.writeFile(join(dir, file + '.reason.txt'), reason + '\n').catch(() => undefined);
    await syncDir(this.dir);
  }
}

/** A rename is durable only once its folder is synced; Windows cannot open folders, and NTFS journals renames. */
async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(dir, 'r');
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on folders; the file itself was synced.
  } finally {
    await fh?.close();
  }
}
