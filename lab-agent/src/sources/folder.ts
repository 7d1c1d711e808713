/**
 * A SeriesSource over a local folder (on-prem shares, demos, `lab-agent segment`): series id = a
 * sub-folder of `root` holding that series' DICOM files. The files are copied so that the job's work dir
 * owns its inputs and can be removed as a whole.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { mapLimit } from './limit.js';
import type { SeriesProgress, SeriesSource } from './types.js';

export class FolderSource implements SeriesSource {
  readonly name = 'folder';
  private readonly root: string;
  private readonly concurrency: number;

  constructor(root: string, o: { concurrency?: number } = {}) {
    this.root = path.resolve(root);
    this.concurrency = Math.max(1, o.concurrency ?? 4);
  }

  /**
   * The folder of one series. An id is data from a job, not a path: absolute ids and ids that leave `root`
   * ("..", or a symlink pointing outside, checked in fetchSeries) are refused.
   */
  seriesDir(seriesId: string): string {
    if (!seriesId || path.isAbsolute(seriesId) || /^[a-zA-Z]:/.test(seriesId) || seriesId.includes('\0')) {
      throw new Error(`series ${JSON.stringify(seriesId)}: not a folder name inside the source root`);
    }
    const dir = path.resolve(this.root, seriesId);
    const rel = path.relative(this.root, dir);
    if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
      throw new Error(`series ${JSON.stringify(seriesId)}: not a folder name inside the source root`);
    }
    return dir;
  }

  async fetchSeries(seriesId: string, destDir: string, signal: AbortSignal, onProgress?: (p: SeriesProgress) => void): Promise<string[]> {
    signal.throwIfAborted();
    const dir = this.seriesDir(seriesId);
    let real: string;
    let entries;
    try {
      real = await fsp.realpath(dir);
      entries = await fsp.readdir(real, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new Error(`series ${seriesId}: no such folder in ${this.root}`);
      throw new Error(`series ${seriesId}: cannot read ${dir} (${code ?? (e as Error).message})`);
    }
    const realRoot = await fsp.realpath(this.root).catch(() => this.root);
    const rel = path.relative(realRoot, real);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`series ${seriesId}: the folder links outside the source root`);

    const files = entries.filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name).sort();
    if (files.length === 0) throw new Error(`series ${seriesId}: no files in ${dir}`);
    const progress: SeriesProgress = { files: 0, bytes: 0, totalFiles: files.length };
    const out = files.map((f) => path.join(destDir, f));
    const done: string[] = [];
    try {
      await mapLimit(files, this.concurrency, signal, async (f, i, sig) => {
        sig.throwIfAborted();
        try {
          // COPYFILE_EXCL: the destination is ours alone; a leftover would mean a bug.
          await fsp.copyFile(path.join(real, f), out[i]!, fsp.constants.COPYFILE_EXCL);
        } catch (e) {
          // A copy that failed half-way (disk full) may leave a partial file; an existing one is not ours.
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') await fsp.rm(out[i]!, { force: true });
          throw e;
        }
        done.push(out[i]!);
        const { size } = await fsp.stat(out[i]!);
        // Added after the await: `progress.bytes += await ...` would lose concurrent updates.
        progress.files++;
        progress.bytes += size;
        onProgress?.({ ...progress });
      });
    } catch (e) {
      // The completed copies of a failed series are useless: remove them.
      await Promise.all(done.map((f) => fsp.rm(f, { force: true })));
      if (signal.aborted) throw signal.reason;
      throw new Error(`series ${seriesId}: copying from ${dir} failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
    }
    return out;
  }

  async check(): Promise<{ ok: boolean; detail: string }> {
    try {
      const s = await fsp.stat(this.root);
      return s.isDirectory() ? { ok: true, detail: `folder ${this.root}` } : { ok: false, detail: `${this.root} is not a folder` };
    } catch (e) {
      return { ok: false, detail: `cannot read ${this.root}: ${(e as Error).message}` };
    }
  }
}
