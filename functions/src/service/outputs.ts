import type { JobView, SignedTarget } from '@lab-relay/protocol';
import { isValidObjectName, objectName, OUTPUTS, type BlobStore, type OutputName } from '../blobs/blob-store.js';
import type { Job } from '../jobs/job.js';

export interface OutputUrls {
  store: BlobStore;
  uploadTtlS: number;
  downloadTtlS: number;
}

/** One signed PUT per output, under this attempt's prefix. */
export async function uploadTargets(o: OutputUrls, job: Job): Promise<Record<string, SignedTarget>> {
  const out: Record<string, SignedTarget> = {};
  for (const name of Object.keys(OUTPUTS) as OutputName[]) {
    out[name] = await o.store.signUpload(objectName(job.id, job.attempts, name), OUTPUTS[name].contentType, o.uploadTtlS);
  }
  return out;
}

/**
 * Signed GETs for the outputs a completed job reported. Only objects under this request's own
 * prefix are signed: a result cannot make the API hand out URLs to anything else.
 */
export async function downloadLinks(o: OutputUrls, job: Job): Promise<JobView['downloads']> {
  const outputs = job.result?.outputs;
  if (job.status !== 'completed' || !outputs || typeof outputs !== 'object') return undefined;
  const links: Record<string, SignedTarget> = {};
  for (const [name, ref] of Object.entries(outputs as Record<string, { object?: unknown }>)) {
    const object = ref?.object;
    if (typeof object !== 'string' || !isValidObjectName(object) || !object.startsWith(`requests/${job.id}/`)) continue;
    links[name] = await o.store.signDownload(object, o.downloadTtlS);
  }
  return Object.keys(links).length ? links : undefined;
}
