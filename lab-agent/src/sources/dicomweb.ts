/**
 * DICOMweb source (WADO-RS, PS3.18): works with Orthanc's DICOMweb plugin (root .../dicom-web), Google
 * Cloud Healthcare API (.../dicomStores/STORE/dicomWeb), dcm4chee (.../rs) and other standard servers.
 *
 * Series id: "STUDY_UID:SERIES_UID", or just "SERIES_UID", in which case the study is found by QIDO-RS
 * (`GET {root}/series?SeriesInstanceUID=...`, one extra request). UIDs hold only digits and dots, so ":"
 * cannot occur inside one; the job API refuses "/" in ids, and ":" needs no escaping in its URLs.
 *
 * The series is retrieved in one `GET {root}/studies/{study}/series/{series}` answered as
 * multipart/related; type="application/dicom", parsed as it streams and written part by part. No
 * transfer-syntax is requested, so a standard server sends Explicit VR Little Endian (the PS3.18 default),
 * which the loader reads even when the archive stores compressed images.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { OutFile } from './files.js';
import { HttpClient, HttpStatusError, ResponseError, type Attempt, type HttpOptions } from './http.js';
import { boundaryOf, MultipartError, MultipartParser } from './multipart.js';
import type { SeriesProgress, SeriesSource } from './types.js';

/** Separates the StudyInstanceUID from the SeriesInstanceUID in a DICOMweb series id. */
export const DICOMWEB_ID_SEPARATOR = ':';

export interface DicomWebSourceOptions extends Omit<HttpOptions, 'label'> {
  /** Largest DICOM instance (one part) accepted (default 1 GiB). */
  maxFileBytes?: number;
  /** Largest whole-series response accepted (default 8 GiB). */
  maxSeriesBytes?: number;
}

const UID = /^[0-9]+(\.[0-9]+)*$/;
const ACCEPT_DICOM = 'multipart/related; type="application/dicom"';

export interface DicomWebSeriesRef {
  study?: string;
  series: string;
}

/** Parses "STUDY:SERIES" or "SERIES"; throws naming the id when it is neither. */
export function parseDicomWebSeriesId(id: string): DicomWebSeriesRef {
  const parts = id.split(DICOMWEB_ID_SEPARATOR);
  const ok = parts.length <= 2 && parts.every((p) => UID.test(p) && p.length <= 64);
  if (!ok) throw new Error(`series ${id}: expected STUDY_UID${DICOMWEB_ID_SEPARATOR}SERIES_UID or a SeriesInstanceUID (digits and dots)`);
  return parts.length === 2 ? { study: parts[0]!, series: parts[1]! } : { series: parts[0]! };
}

type DicomJson = Array<Record<string, { vr?: string; Value?: unknown[] }>>;

export class DicomWebSource implements SeriesSource {
  readonly name = 'dicomweb';
  readonly http: HttpClient;
  private readonly maxFileBytes: number;
  private readonly maxSeriesBytes: number;

  constructor(o: DicomWebSourceOptions) {
    this.http = new HttpClient({ ...o, label: 'DICOMweb server' });
    this.maxFileBytes = o.maxFileBytes ?? 1 << 30;
    this.maxSeriesBytes = o.maxSeriesBytes ?? 8 * 2 ** 30;
  }

  /** The StudyInstanceUID of a series, by QIDO-RS. */
  async findStudy(seriesUid: string, signal: AbortSignal): Promise<string> {
    const what = `series ${seriesUid}`;
    const rows = await this.http.json<DicomJson | null>(`/series?SeriesInstanceUID=${seriesUid}&includefield=0020000D`, {
      headers: { accept: 'application/dicom+json' },
      signal,
      what,
    });
    if (!Array.isArray(rows) || rows.length === 0) throw new Error(`DICOMweb server has no series ${seriesUid}`);
    const studies = new Set(rows.map((r) => r['0020000D']?.Value?.[0]).filter((v): v is string => typeof v === 'string'));
    if (studies.size !== 1) throw new Error(`DICOMweb server answered ${studies.size} studies for series ${seriesUid}; give the id as STUDY_UID${DICOMWEB_ID_SEPARATOR}SERIES_UID`);
    const study = [...studies][0]!;
    if (!UID.test(study)) throw new ResponseError(`DICOMweb server answered an invalid StudyInstanceUID for series ${seriesUid}`);
    return study;
  }

  async fetchSeries(seriesId: string, destDir: string, signal: AbortSignal, onProgress?: (p: SeriesProgress) => void): Promise<string[]> {
    const ref = parseDicomWebSeriesId(seriesId);
    const study = ref.study ?? (await this.findStudy(ref.series, signal));
    const what = `series ${seriesId}`;
    try {
      return await this.http.request(
        `/studies/${study}/series/${ref.series}`,
        { headers: { accept: ACCEPT_DICOM }, signal, what },
        // One attempt: on failure its files are removed before request() decides whether to retry.
        async (a) => {
          const written: string[] = [];
          try {
            const status = a.res.status;
            if (status === 204) throw new ResponseError(`DICOMweb server has no instances in series ${seriesId} (204 No Content)`);
            await this.readParts(a, seriesId, destDir, written, onProgress);
            if (written.length === 0) throw new ResponseError(`DICOMweb server answered series ${seriesId} with no instances`);
            return written;
          } catch (e) {
            await Promise.all(written.map((f) => rm(f, { force: true })));
            throw e;
          }
        },
      );
    } catch (e) {
      if (e instanceof HttpStatusError && e.status === 404) throw new Error(`DICOMweb server has no series ${seriesId} (study ${study})`);
      // 406: the server cannot send the series as Explicit VR Little Endian (e.g. Google's API for some
      // compressed syntaxes); asking for the stored syntax would only move the failure to the loader.
      if (e instanceof HttpStatusError && e.status === 406) {
        throw new Error(`DICOMweb server cannot send series ${seriesId} uncompressed (406 Not Acceptable); convert it on the PACS or use the Orthanc REST source`);
      }
      if (e instanceof MultipartError) throw new MultipartError(`DICOMweb server sent a bad answer for series ${seriesId}: ${e.message}`);
      throw e;
    }
  }

  private async readParts(
    a: Attempt,
    seriesId: string,
    destDir: string,
    written: string[],
    onProgress?: (p: SeriesProgress) => void,
  ): Promise<void> {
    const boundary = boundaryOf(a.res.headers.get('content-type'));
    const progress: SeriesProgress = { files: 0, bytes: 0 };
    let file: OutFile | undefined;
    let head: Buffer = Buffer.alloc(0);
    const parser = new MultipartParser(
      boundary,
      {
        start: async (headers, index) => {
          const type = headers['content-type'];
          if (type !== undefined && !/^application\/dicom\s*(;|$)/i.test(type)) {
            throw new MultipartError(`part ${index + 1} is ${JSON.stringify(type)}, not application/dicom`);
          }
          const name = path.join(destDir, `${String(index + 1).padStart(4, '0')}.dcm`);
          file = await OutFile.create(name, this.maxFileBytes, `part ${index + 1} (one DICOM instance)`);
          written.push(name);
          head = Buffer.alloc(0);
        },
        data: async (chunk) => {
          // Keep the first 132 bytes to check the Part-10 "DICM" marker when the part ends.
          if (head.length < 132) head = Buffer.concat([head, chunk.subarray(0, 132 - head.length)]);
          await file!.write(chunk);
        },
        end: async () => {
          const f = file!;
          await f.commit();
          if (head.length < 132 || head.toString('latin1', 128, 132) !== 'DICM') {
            throw new MultipartError(`part ${written.length} is not a DICOM Part-10 file (no DICM marker)`);
          }
          progress.files++;
          progress.bytes += f.size;
          onProgress?.({ ...progress });
          file = undefined;
        },
      },
      { maxTotalBytes: this.maxSeriesBytes },
    );
    try {
      if (a.res.body) {
        for await (const chunk of a.res.body) {
          a.alive();
          await parser.push(chunk);
        }
      }
      await parser.end();
    } finally {
      // A part cut off by an error: close its handle (the caller deletes every file of the attempt).
      await file?.discard();
    }
  }

  async check(): Promise<{ ok: boolean; detail: string }> {
    try {
      await this.http.request('/studies?limit=1', { headers: { accept: 'application/dicom+json' }, signal: AbortSignal.timeout(15_000), what: 'the connection check' }, async () => undefined);
      return { ok: true, detail: `DICOMweb at ${this.http.baseUrl}` };
    } catch (e) {
      return { ok: false, detail: (e as Error).message };
    }
  }
}
