/**
 * Stores the SEG through DICOMweb STOW-RS: `POST {root}/studies` with a one-part multipart/related body.
 * The answer (application/dicom+json) lists the stored instance in ReferencedSOPSequence (0008,1199) with
 * its SOP Instance UID and RetrieveURL, or the failure in FailedSOPSequence (0008,1198).
 *
 * seg_instance_id: on Orthanc's DICOMweb plugin (a root ending in /dicom-web) the Orthanc instance ID,
 * found with `POST /tools/lookup`, so the id means the same as with the REST sink; elsewhere the SOP
 * Instance UID, which every DICOMweb server can retrieve by.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { HttpClient, HttpStatusError, ResponseError, type HttpOptions } from '../sources/http.js';
import type { PacsSink, StoredSeg } from './pacs-sink.js';

export interface StowSinkOptions extends Omit<HttpOptions, 'label'> {
  /**
   * Orthanc's REST base for the ID lookup: 'auto' (default) derives it from a root ending in /dicom-web,
   * false never looks up.
   */
  orthancLookup?: 'auto' | false | string;
}

type DicomJsonItem = Record<string, { vr?: string; Value?: unknown[] }>;

const first = (item: DicomJsonItem | undefined, tag: string): unknown => item?.[tag]?.Value?.[0];

export class StowPacsSink implements PacsSink {
  readonly name = 'stow';
  readonly http: HttpClient;
  private readonly orthancBase: string | undefined;

  constructor(o: StowSinkOptions) {
    this.http = new HttpClient({ ...o, label: 'DICOMweb server (STOW-RS)' });
    const lookup = o.orthancLookup ?? 'auto';
    if (typeof lookup === 'string' && lookup !== 'auto') this.orthancBase = lookup.replace(/\/+$/, '');
    else if (lookup === 'auto') {
      const m = /^(.*)\/dicom-web$/i.exec(this.http.baseUrl);
      this.orthancBase = m ? m[1] : undefined;
    }
  }

  async store(file: string, signal: AbortSignal): Promise<StoredSeg> {
    const dicom = await readFile(file);
    const name = path.basename(file);
    const boundary = `lab-relay-${randomBytes(12).toString('hex')}`;
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1'),
      dicom,
      Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
    ]);
    const what = `storing ${name}`;
    let answer: DicomJsonItem;
    try {
      answer = await this.http.json<DicomJsonItem>('/studies', {
        method: 'POST',
        body,
        headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json' },
        signal,
        what,
        maxBytes: 1 << 20,
      });
    } catch (e) {
      // 409: every instance failed; the body says why but we only keep the status (it may echo the request).
      if (e instanceof HttpStatusError && e.status === 409) throw new Error(`DICOMweb server refused to store ${name} (409 Conflict)`);
      throw e;
    }
    if (!answer || typeof answer !== 'object' || Array.isArray(answer)) throw new ResponseError(`DICOMweb server answered ${what} with an unexpected body`);
    const failed = answer['00081198']?.Value?.[0] as DicomJsonItem | undefined;
    if (failed) throw new Error(`DICOMweb server refused to store ${name} (FailureReason ${String(first(failed, '00081197') ?? '?')})`);
    const ref = answer['00081199']?.Value?.[0] as DicomJsonItem | undefined;
    const uid = first(ref, '00081155');
    if (typeof uid !== 'string') throw new ResponseError(`DICOMweb server answered ${what} without a ReferencedSOPInstanceUID`);
    const retrieve = first(ref, '00081190');
    const stored: StoredSeg = { seg_instance_id: uid, sop_instance_uid: uid, ...(typeof retrieve === 'string' ? { retrieve_url: retrieve } : {}) };
    const orthancId = await this.lookupOrthancId(uid, signal);
    if (orthancId) stored.seg_instance_id = orthancId;
    return stored;
  }

  /** The Orthanc instance ID for a SOP Instance UID, or undefined when the server is not Orthanc. */
  private async lookupOrthancId(uid: string, signal: AbortSignal): Promise<string | undefined> {
    if (!this.orthancBase) return undefined;
    try {
      const hits = await this.http.json<Array<{ ID?: string; Type?: string }>>(`${this.orthancBase}/tools/lookup`, {
        method: 'POST',
        body: uid,
        headers: { 'content-type': 'text/plain' },
        signal,
        what: `looking up instance ${uid}`,
      });
      const hit = Array.isArray(hits) ? hits.find((h) => h.Type === 'Instance' && typeof h.ID === 'string') : undefined;
      return hit?.ID;
    } catch (e) {
      if (signal.aborted) throw e;
      return undefined; // not Orthanc after all, or no REST access: the UID identifies the SEG too
    }
  }

  async check(): Promise<{ ok: boolean; detail: string }> {
    try {
      await this.http.request('/studies?limit=1', { headers: { accept: 'application/dicom+json' }, signal: AbortSignal.timeout(15_000), what: 'the connection check' }, async () => undefined);
      return { ok: true, detail: `STOW-RS to ${this.http.baseUrl}/studies` };
    } catch (e) {
      return { ok: false, detail: (e as Error).message };
    }
  }
}
