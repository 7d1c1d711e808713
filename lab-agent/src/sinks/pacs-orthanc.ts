/** Stores the SEG through Orthanc's REST API: `POST /instances` answers {ID, Status, ParentSeries, ...}. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { HttpClient, HttpStatusError, ResponseError, type HttpOptions } from '../sources/http.js';
import { checkOrthanc } from '../sources/orthanc.js';
import type { PacsSink, StoredSeg } from './pacs-sink.js';

const ORTHANC_ID = /^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/;

export class OrthancPacsSink implements PacsSink {
  readonly name = 'orthanc';
  readonly http: HttpClient;

  constructor(o: Omit<HttpOptions, 'label'>) {
    this.http = new HttpClient({ ...o, label: 'Orthanc (PACS sink)' });
  }

  async store(file: string, signal: AbortSignal): Promise<StoredSeg> {
    // A SEG is a few MB at most: read once, so every retry sends the same bytes.
    const body = await readFile(file);
    const what = `storing ${path.basename(file)}`;
    let r: { ID?: unknown; Status?: unknown };
    try {
      r = await this.http.json('/instances', { method: 'POST', body, headers: { 'content-type': 'application/dicom' }, signal, what, maxBytes: 1 << 20 });
    } catch (e) {
      // Orthanc answers 400 for a file it cannot parse as DICOM.
      if (e instanceof HttpStatusError && e.status === 400) throw new Error(`Orthanc refused ${path.basename(file)} as invalid DICOM (${e.message})`);
      throw e;
    }
    if (typeof r.ID !== 'string' || !ORTHANC_ID.test(r.ID)) throw new ResponseError(`Orthanc answered ${what} without an instance ID`);
    if (r.Status !== 'Success' && r.Status !== 'AlreadyStored') throw new ResponseError(`Orthanc did not store ${path.basename(file)} (Status ${String(r.Status)})`);
    return { seg_instance_id: r.ID };
  }

  check(): Promise<{ ok: boolean; detail: string }> {
    return checkOrthanc(this.http);
  }
}
