/** Where the agent gets a series' DICOM files (Orthanc REST, DICOMweb, a local folder). */
export interface SeriesSource {
  readonly name: string;
  /**
   * Writes every instance of one series as a DICOM file into `destDir` (created by the caller) and
   * returns the file paths. Throws an Error naming the series on an unknown id or a failed download.
   */
  fetchSeries(seriesId: string, destDir: string, signal: AbortSignal): Promise<string[]>;
  /** For `lab-agent doctor`: reachable and authorised. */
  check?(): Promise<{ ok: boolean; detail: string }>;
}
