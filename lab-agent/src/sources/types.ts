/** Where the agent gets a series' DICOM files (Orthanc REST, DICOMweb, a local folder). */
export interface SeriesSource {
  readonly name: string;
  /**
   * Writes every instance of one series as a DICOM file into `destDir` (created by the caller) and
   * returns the file paths. Throws an Error naming the series on an unknown id or a failed download.
   * On failure or abort it leaves no partial file in `destDir` and no file handle open.
   * `onProgress`, when given, is called after each completed file.
   */
  fetchSeries(seriesId: string, destDir: string, signal: AbortSignal, onProgress?: (p: SeriesProgress) => void): Promise<string[]>;
  /** For `lab-agent doctor`: reachable and authorised. */
  check?(): Promise<{ ok: boolean; detail: string }>;
}

/** Progress of one series: files completed and their bytes; `totalFiles` once the source knows it. */
export interface SeriesProgress {
  files: number;
  bytes: number;
  totalFiles?: number;
}
