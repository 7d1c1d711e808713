/**
 * Orthanc REST source: series id = an Orthanc series ID (the SHA-1-based "xxxxxxxx-xxxxxxxx-..." form).
 * `GET /series/{id}` lists the instances; each `GET /instances/{id}/file` is the stored DICOM file,
 * streamed to disk, several at once. A SeriesInstanceUID is accepted too and mapped with
 * `POST /tools/lookup`, since that is what users copy out of a viewer.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { bodyToFile } from './files.js';
import { HttpClient, HttpStatusError, type HttpOptions } from './http.js';
import { mapLimit } from './limit.js';
import type { SeriesProgress, SeriesSource } from './types.js';

export interface OrthancSourceOptions extends Omit<HttpOptions, 'label'> {
  /** Instances downloaded at the same time (default 4). */
  concurrency?: number;
  /** Largest single DICOM file accepted (default 1 GiB). */
  maxFileBytes?: number;
}

const ORTHANC_ID = /^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/;
const DICOM_UID = /^[0-9]+(\.[0-9]+)*$/;

export class OrthancSource implements SeriesSource {
  readonly name = 'orthanc';
  readonly http: HttpClient;
  private readonly concurrency: number;
  private readonly maxFileBytes: number;

  constructor(o: OrthancSourceOptions) {
    this.http = new HttpClient({ ...o, label: 'Orthanc' });
    this.concurrency = Math.max(1, o.concurrency ?? 4);
    this.maxFileBytes = o.maxFileBytes ?? 1 << 30;
  }

  /** The Orthanc series ID for an id that is either one already or a SeriesInstanceUID. */
  async resolveSeries(seriesId: string, signal: AbortSignal): Promise<string> {
    if (ORTHANC_ID.test(seriesId)) return seriesId;
    if (!DICOM_UID.test(seriesId) || seriesId.length > 64) {
      throw new Error(`series ${seriesId}: not an Orthanc series ID (xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx) nor a SeriesInstanceUID`);
    }
    const hits = await this.http.json<Array<{ ID?: string; Type?: string }>>('/tools/lookup', {
      method: 'POST',
      body: seriesId,
      headers: { 'content-type': 'text/plain' },
      signal,
      what: `series ${seriesId}`,
    });
    const hit = Array.isArray(hits) ? hits.find((h) => h.Type === 'Series' && typeof h.ID === 'string') : undefined;
    if (!hit) throw new Error(`Orthanc has no series ${seriesId}`);
    return hit.ID!;
  }

  /** The instance IDs of a series, in Orthanc's order. */
  async listInstances(seriesId: string, signal: AbortSignal): Promise<string[]> {
    const id = await this.resolveSeries(seriesId, signal);
    let series: { Instances?: unknown };
    try {
      series = await this.http.json(`/series/${id}`, { signal, what: `series ${seriesId}` });
    } catch (e) {
      if (e instanceof HttpStatusError && e.status === 404) throw new Error(`Orthanc has no series ${seriesId}`);
      throw e;
    }
    const list = series.Instances;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && ORTHANC_ID.test(x))) {
      throw new Error(`Orthanc answered series ${seriesId} without a valid Instances list`);
    }
    if (list.length === 0) throw new Error(`Orthanc series ${seriesId} has no instances`);
    return list as string[];
  }

  async fetchSeries(seriesId: string, destDir: string, signal: AbortSignal, onProgress?: (p: SeriesProgress) => void): Promise<string[]> {
    const instances = await this.listInstances(seriesId, signal);
    const progress: SeriesProgress = { files: 0, bytes: 0, totalFiles: instances.length };
    onProgress?.({ ...progress });
    const written: string[] = [];
    const width = String(instances.length).length;
    try {
      await mapLimit(instances, this.concurrency, signal, async (iid, i, sig) => {
        const file = path.join(destDir, `${String(i + 1).padStart(width, '0')}-${iid}.dcm`);
        const what = `instance ${iid} of series ${seriesId}`;
        const bytes = await this.http.request(`/instances/${iid}/file`, { headers: { accept: 'application/dicom' }, signal: sig, what }, (a) =>
          bodyToFile(a, file, this.maxFileBytes, `Orthanc's ${what}`),
        );
        written.push(file);
        progress.files++;
        progress.bytes += bytes;
        onProgress?.({ ...progress });
      });
    } catch (e) {
      // Complete files of a failed series are useless; the in-flight ones were removed by bodyToFile.
      await Promise.all(written.map((f) => rm(f, { force: true })));
      if (e instanceof HttpStatusError && e.status === 404) throw new Error(`Orthanc lost an instance of series ${seriesId} during the download (404); retry the job`);
      throw e;
    }
    return instances.map((iid, i) => path.join(destDir, `${String(i + 1).padStart(width, '0')}-${iid}.dcm`));
  }

  check(): Promise<{ ok: boolean; detail: string }> {
    return checkOrthanc(this.http);
  }
}

/** `GET /system`: reachable, authorised, and which Orthanc (for `lab-agent doctor`; source and sink). */
export async function checkOrthanc(http: HttpClient): Promise<{ ok: boolean; detail: string }> {
  try {
    const s = await http.json<{ Version?: string }>('/system', { signal: AbortSignal.timeout(15_000), what: 'the system check' });
    return { ok: true, detail: `Orthanc ${s.Version ?? '?'} at ${http.baseUrl}` };
  } catch (e) {
    return { ok: false, detail: (e as Error).message };
  }
}
