/**
 * Where a job's outputs (the DICOM SEG, the preview) go: Cloud Storage, or a local directory served
 * by the API. Either way the lab PC gets short-lived signed URLs for exactly one object each and holds
 * no storage credentials; clients get signed download URLs from the status answer.
 */
export interface SignedTarget {
  url: string;
  object: string;
  method: 'PUT' | 'GET';
  /** Headers the request must carry exactly as given (they are part of the signature). */
  headers: Record<string, string>;
  expires_at: string;
}

export interface BlobStore {
  readonly kind: 'fs' | 'gcs';
  signUpload(object: string, contentType: string, ttlS: number): Promise<SignedTarget>;
  signDownload(object: string, ttlS: number): Promise<SignedTarget>;
}

/** The outputs an agent may upload, by name, with their file names and content types. */
export const OUTPUTS = {
  seg: { file: 'seg.dcm', contentType: 'application/dicom' },
  preview: { file: 'preview.png', contentType: 'image/png' },
} as const;
export type OutputName = keyof typeof OUTPUTS;

/**
 * Objects live under a per-request, per-attempt prefix, so an agent whose lease was lost can never
 * overwrite the outputs of the attempt that replaced it.
 */
export function objectName(requestId: string, attempt: number, name: OutputName): string {
  return `requests/${requestId}/${attempt}/${OUTPUTS[name].file}`;
}

/** Object names are generated here, but also arrive in URLs: only this shape is accepted. */
export function isValidObjectName(object: string): boolean {
  return /^requests\/[A-Za-z0-9_-]{1,64}\/[0-9]{1,3}\/[A-Za-z0-9_.-]{1,64}$/.test(object) && !object.includes('..');
}
