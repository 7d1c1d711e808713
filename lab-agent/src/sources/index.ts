/** The image sources and the factory that builds one from validated settings. */
import path from 'node:path';
import { DicomWebSource } from './dicomweb.js';
import { FolderSource } from './folder.js';
import type { HttpAuth } from './http.js';
import { OrthancSource } from './orthanc.js';
import type { RemoteSourceConfig, SourceConfig } from './config.js';
import type { SeriesSource } from './types.js';

export * from './config.js';
export { DicomWebSource, DICOMWEB_ID_SEPARATOR, parseDicomWebSeriesId } from './dicomweb.js';
export { fetchStudy, STUDY_SERIES, type StudyProgress, type StudySeries } from './fetch-study.js';
export { FolderSource } from './folder.js';
export { OrthancSource } from './orthanc.js';
export type { SeriesProgress, SeriesSource } from './types.js';

export function authOf(c: { user?: string | undefined; password?: string | undefined; token?: string | undefined }): HttpAuth {
  if (c.token) return { kind: 'bearer', token: c.token };
  if (c.user) return { kind: 'basic', user: c.user, password: c.password ?? '' };
  return { kind: 'none' };
}

export function httpOptionsOf(c: RemoteSourceConfig) {
  return { baseUrl: c.url, auth: authOf(c), timeoutMs: c.timeout * 1000, attempts: c.attempts };
}

/** `cwd` resolves a relative folder root. */
export function createSource(c: SourceConfig, cwd: string = process.cwd()): SeriesSource {
  switch (c.kind) {
    case 'orthanc':
      return new OrthancSource({ ...httpOptionsOf(c), concurrency: c.concurrency });
    case 'dicomweb':
      return new DicomWebSource(httpOptionsOf(c));
    case 'folder':
      return new FolderSource(path.resolve(cwd, c.root), { concurrency: c.concurrency });
  }
}
