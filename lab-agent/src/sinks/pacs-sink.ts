/**
 * The PACS as a result sink: the SEG goes back to where the images came from, and its id is reported as
 * `seg_instance_id`. Orthanc REST (`POST /instances`, the Orthanc instance ID) or any DICOMweb server
 * (STOW-RS; the Orthanc ID when the server is Orthanc, else the SOP Instance UID).
 */
export interface StoredSeg {
  /** What the job reports as seg_instance_id: the Orthanc instance ID, or the SOP Instance UID. */
  seg_instance_id: string;
  sop_instance_uid?: string;
  /** STOW-RS: the RetrieveURL the server gave for the instance. */
  retrieve_url?: string;
}

export interface PacsSink {
  readonly name: string;
  /** Stores one DICOM file; retries transient failures; throws naming the server and the problem. */
  store(file: string, signal: AbortSignal): Promise<StoredSeg>;
  check?(): Promise<{ ok: boolean; detail: string }>;
}
