/**
 * Downloads a job's four series into JOBDIR/t1, t1c, t2, flair, reporting progress for the whole study.
 * On failure or abort every series folder it made is removed before the promise settles (no download is
 * still running then, so no handle is open); the caller removes JOBDIR itself when the job ends.
 *
 * Errors are RunnerFailures: `retryable` when the server was unreachable, slow or answered 5xx/429 even
 * after the source's own retries (another attempt later may succeed), not for an unknown series, refused
 * credentials or a malformed answer.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { JobAbort, RunnerFailure } from '../errors.js';
import { isNetworkError, isTransient } from './http.js';
import { mapLimit } from './limit.js';
import type { SeriesProgress, SeriesSource } from './types.js';

export const STUDY_SERIES = ['t1', 't1c', 't2', 'flair'] as const;
export type StudySeries = (typeof STUDY_SERIES)[number];

export interface StudyProgress {
  /** The series that just progressed. */
  series: StudySeries;
  /** Files and bytes of the whole study so far. */
  files: number;
  bytes: number;
  /** Total files of the study once every series' count is known (Orthanc, folder), else undefined. */
  totalFiles?: number;
  /** Series finished. */
  seriesDone: number;
}

export interface FetchStudyOptions {
  /** Series downloaded at the same time (default 2; each source parallelises within a series too). */
  seriesConcurrency?: number;
}

/** Whether an error from a source is worth another attempt of the whole job later. */
export function retryableFetchError(e: unknown): boolean {
  return isTransient(e) || isNetworkError((e as { cause?: unknown })?.cause);
}

export async function fetchStudy(
  source: SeriesSource,
  seriesIds: readonly string[],
  jobDir: string,
  signal: AbortSignal,
  onProgress?: (p: StudyProgress) => void,
  o: FetchStudyOptions = {},
): Promise<Record<StudySeries, string[]>> {
  if (seriesIds.length !== STUDY_SERIES.length) {
    throw new RunnerFailure(`a study needs ${STUDY_SERIES.length} series ids (${STUDY_SERIES.join(', ')}), got ${seriesIds.length}`, false);
  }
  const dirs = STUDY_SERIES.map((s) => path.join(jobDir, s));
  const per = new Map<StudySeries, SeriesProgress>();
  let seriesDone = 0;
  const report = (series: StudySeries) => {
    if (!onProgress) return;
    let files = 0, bytes = 0, total = 0, known = true;
    for (const s of STUDY_SERIES) {
      const p = per.get(s);
      files += p?.files ?? 0;
      bytes += p?.bytes ?? 0;
      if (p?.totalFiles === undefined) known = false;
      else total += p.totalFiles;
    }
    onProgress({ series, files, bytes, seriesDone, ...(known ? { totalFiles: total } : {}) });
  };
  try {
    const out = await mapLimit(STUDY_SERIES, o.seriesConcurrency ?? 2, signal, async (s, i, sig) => {
      // A fresh folder: leftovers of an earlier attempt in a reused job dir must not join this series.
      await rm(dirs[i]!, { recursive: true, force: true });
      await mkdir(dirs[i]!, { recursive: true });
      try {
        const files = await source.fetchSeries(seriesIds[i]!, dirs[i]!, sig, (p) => {
          per.set(s, p);
          report(s);
        });
        seriesDone++;
        report(s);
        return files;
      } catch (e) {
        if (sig.aborted && signal.aborted) throw e;
        if (e instanceof JobAbort || (e as Error)?.name === 'AbortError') throw e;
        throw new RunnerFailure(`cannot fetch the ${s} series: ${(e as Error)?.message ?? String(e)}`, retryableFetchError(e));
      }
    });
    return Object.fromEntries(STUDY_SERIES.map((s, i) => [s, out[i]!])) as Record<StudySeries, string[]>;
  } catch (e) {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    throw e;
  }
}
