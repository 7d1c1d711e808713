// Orthanc REST and DICOMweb sources and both PACS sinks against the real Orthanc from Debian, started on
// loopback with authentication on. Skipped loudly where Orthanc is not installed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { loadSeries } from '../../lab-agent/src/imaging/dicom/load-series.js';
import { BRATS_SEGMENTS } from '../../lab-agent/src/imaging/seg/segments.js';
import { writeSeg } from '../../lab-agent/src/imaging/seg/write-seg.js';
import { writeFile } from 'node:fs/promises';
import { RunnerFailure } from '../../lab-agent/src/errors.js';
import { DicomWebSource } from '../../lab-agent/src/sources/dicomweb.js';
import { fetchStudy, type StudyProgress } from '../../lab-agent/src/sources/fetch-study.js';
import { OrthancSource } from '../../lab-agent/src/sources/orthanc.js';
import { OrthancPacsSink } from '../../lab-agent/src/sinks/pacs-orthanc.js';
import { StowPacsSink } from '../../lab-agent/src/sinks/pacs-stow.js';
import { hasDicomWebPlugin, hasOrthanc, startOrthanc, uploadStudy, warnIfNoOrthanc, type OrthancServer, type UploadedSeries } from '../harness/orthanc.js';
import { failure, hashes, listFiles, openFilesUnder, removeDir, tempDir, writeSmallStudy } from './helpers.js';

warnIfNoOrthanc('image sources and PACS sinks against Orthanc', true);
const d = hasOrthanc ? describe : describe.skip;
// The DICOMweb cases need the plugin (Debian's orthanc-dicomweb); the REST ones do not.
const itWeb = hasDicomWebPlugin ? it : it.skip;

d('sources and sinks against a real Orthanc', () => {
  let orthanc: OrthancServer;
  let tmp: string;
  let series: Record<string, UploadedSeries>;
  let labels: Uint8Array;
  let studyDir: string;
  const auth = () => ({ kind: 'basic' as const, user: orthanc.user, password: orthanc.password });
  const rest = (o: Partial<ConstructorParameters<typeof OrthancSource>[0]> = {}) => new OrthancSource({ baseUrl: orthanc.url, auth: auth(), timeoutMs: 10_000, ...o });
  const web = (o: Partial<ConstructorParameters<typeof DicomWebSource>[0]> = {}) => new DicomWebSource({ baseUrl: orthanc.dicomWebUrl, auth: auth(), timeoutMs: 10_000, ...o });
  const never = () => new AbortController().signal;
  let n = 0;
  const freshDir = async () => {
    const dir = path.join(tmp, `dl-${++n}`);
    await mkdir(dir, { recursive: true });
    return dir;
  };

  beforeAll(async () => {
    tmp = await tempDir('orthanc');
    studyDir = path.join(tmp, 'study');
    const w = await writeSmallStudy(studyDir, 11);
    labels = w.labels;
    orthanc = await startOrthanc();
    series = await uploadStudy(orthanc, studyDir);
  });
  afterAll(async () => {
    await orthanc?.stop();
    await removeDir(tmp);
  });

  it('REST: fetches a series by Orthanc ID; the files are byte-identical to the uploaded ones', async () => {
    const dir = await freshDir();
    const progress: number[] = [];
    const files = await rest().fetchSeries(series.t1!.id, dir, never(), (p) => progress.push(p.files));
    expect(files).toHaveLength(series.t1!.files.length);
    expect(await hashes(files)).toEqual(await hashes(series.t1!.files));
    expect(progress.at(-1)).toBe(files.length);
    expect((await listFiles(dir)).sort()).toEqual([...files].sort());
  });

  it('REST: a SeriesInstanceUID is mapped to the Orthanc series with /tools/lookup', async () => {
    const files = await rest().fetchSeries(series.t2!.seriesInstanceUID, await freshDir(), never());
    expect(await hashes(files)).toEqual(await hashes(series.t2!.files));
  });

  it('REST: fetchStudy downloads the four series into t1/t1c/t2/flair with progress over the whole study', async () => {
    const jobDir = await freshDir();
    const events: StudyProgress[] = [];
    const ids = ['t1', 't1c', 't2', 'flair'].map((s) => series[s]!.id);
    const study = await fetchStudy(rest(), ids, jobDir, never(), (p) => events.push(p));
    for (const s of ['t1', 't1c', 't2', 'flair'] as const) {
      expect(path.dirname(study[s][0]!)).toBe(path.join(jobDir, s));
      expect(await hashes(study[s])).toEqual(await hashes(series[s]!.files));
    }
    const last = events.at(-1)!;
    expect(last.files).toBe(96);
    expect(last.totalFiles).toBe(96);
    expect(last.seriesDone).toBe(4);
    expect(last.bytes).toBeGreaterThan(96 * 48 * 48 * 2);
    expect(await openFilesUnder(jobDir)).toEqual([]);
  });

  it('REST: an unknown series id fails at once with an error naming it (404, not retried)', async () => {
    const unknown = '00000000-11111111-22222222-33333333-44444444';
    const t0 = Date.now();
    // A long backoff would show in the elapsed time if the 404 were retried.
    await expect(rest({ backoffBaseMs: 5000 }).fetchSeries(unknown, await freshDir(), never())).rejects.toThrow(`Orthanc has no series ${unknown}`);
    expect(Date.now() - t0).toBeLessThan(3000);
    await expect(rest().fetchSeries('1.2.3.4.5', await freshDir(), never())).rejects.toThrow('Orthanc has no series 1.2.3.4.5');
    await expect(rest().fetchSeries('../../system', await freshDir(), never())).rejects.toThrow(/not an Orthanc series ID/);
  });

  it('REST: a wrong password is a clear auth error, not retried, and the password appears nowhere', async () => {
    const t0 = Date.now();
    const err = await failure(rest({ auth: { kind: 'basic', user: orthanc.user, password: 'wrong-pass-xyz' }, backoffBaseMs: 5000 }).fetchSeries(series.t1!.id, await freshDir(), never()));
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/refused the credentials.*401/);
    expect(err.message).not.toContain('wrong-pass-xyz');
    expect(JSON.stringify(err)).not.toContain('wrong-pass-xyz');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('REST: abort mid-download rejects promptly and leaves no files and no open handles', async () => {
    const jobDir = await freshDir();
    const ac = new AbortController();
    const ids = ['t1', 't1c', 't2', 'flair'].map((s) => series[s]!.id);
    let abortedAt = 0;
    const p = fetchStudy(rest({ concurrency: 2 }), ids, jobDir, ac.signal, (ev) => {
      if (ev.files >= 5 && !ac.signal.aborted) {
        abortedAt = Date.now();
        ac.abort(new Error('job cancelled'));
      }
    });
    await expect(p).rejects.toThrow('job cancelled');
    expect(Date.now() - abortedAt).toBeLessThan(1000);
    expect(await listFiles(jobDir)).toEqual([]);
    expect(await openFilesUnder(jobDir)).toEqual([]);
  });

  itWeb('DICOMweb: fetches STUDY:SERIES and a bare SeriesInstanceUID (QIDO); parts are byte-identical to the uploads', async () => {
    const s = series.flair!;
    const dir = await freshDir();
    const progress: number[] = [];
    const files = await web().fetchSeries(`${s.studyInstanceUID}:${s.seriesInstanceUID}`, dir, never(), (p) => progress.push(p.files));
    expect(files).toHaveLength(s.files.length);
    expect(await hashes(files)).toEqual(await hashes(s.files));
    expect(progress.at(-1)).toBe(s.files.length);
    const bare = await web().fetchSeries(series.t1c!.seriesInstanceUID, await freshDir(), never());
    expect(await hashes(bare)).toEqual(await hashes(series.t1c!.files));
    // What the pipeline will do with them: the loader reads the fetched series.
    const v = await loadSeries(files);
    expect(v.dims).toEqual([48, 48, 24]);
  });

  itWeb('DICOMweb: an unknown series fails with an error naming it; a wrong password is an auth error', async () => {
    const s = series.t1!;
    await expect(web().fetchSeries('1.2.3.999', await freshDir(), never())).rejects.toThrow('DICOMweb server has no series 1.2.3.999');
    const dir = await freshDir();
    await expect(web().fetchSeries(`${s.studyInstanceUID}:1.2.3.999`, dir, never())).rejects.toThrow(`DICOMweb server has no series ${s.studyInstanceUID}:1.2.3.999`);
    expect(await listFiles(dir)).toEqual([]);
    await expect(web({ auth: { kind: 'bearer', token: 'not-a-valid-token' } }).fetchSeries(s.seriesInstanceUID, await freshDir(), never())).rejects.toThrow(
      /refused the credentials.*401/,
    );
    await expect(web().fetchSeries('abc/def', await freshDir(), never())).rejects.toThrow(/expected STUDY_UID:SERIES_UID/);
  });

  describe('PACS sinks', () => {
    let segFile: string;
    let segUid: string;
    beforeAll(async () => {
      const reference = await loadSeries(path.join(studyDir, 'flair'));
      const seg = writeSeg({ labels, reference, segments: BRATS_SEGMENTS, algorithm: { name: 'test', version: '1' } });
      segFile = path.join(tmp, 'seg.dcm');
      segUid = seg.sopInstanceUID;
      await writeFile(segFile, seg.bytes);
    });

    it('Orthanc REST sink: POST /instances returns the Orthanc ID; GET /instances/{id} shows the SEG', async () => {
      const r = await new OrthancPacsSink({ baseUrl: orthanc.url, auth: auth() }).store(segFile, never());
      expect(r.seg_instance_id).toMatch(/^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/);
      const inst = await orthanc.json<{ MainDicomTags: { SOPInstanceUID: string } }>('GET', `/instances/${r.seg_instance_id}`);
      expect(inst.MainDicomTags.SOPInstanceUID).toBe(segUid);
      const tags = await orthanc.json<Record<string, { Value: unknown }>>('GET', `/instances/${r.seg_instance_id}/tags`);
      expect(tags['0008,0016']!.Value).toBe('1.2.840.10008.5.1.4.1.1.66.4');
      // Storing again is idempotent (a retried job): same ID.
      expect((await new OrthancPacsSink({ baseUrl: orthanc.url, auth: auth() }).store(segFile, never())).seg_instance_id).toBe(r.seg_instance_id);
    });

    itWeb('STOW-RS sink: stores through /dicom-web/studies, returns the Orthanc ID (lookup) with the SOP UID and RetrieveURL', async () => {
      // A second SEG so that this test does not see the REST sink's upload.
      const reference = await loadSeries(path.join(studyDir, 't1'));
      const seg = writeSeg({ labels, reference, segments: BRATS_SEGMENTS, algorithm: { name: 'test', version: '2' } });
      const file = path.join(tmp, 'seg2.dcm');
      await writeFile(file, seg.bytes);
      const r = await new StowPacsSink({ baseUrl: orthanc.dicomWebUrl, auth: auth() }).store(file, never());
      expect(r.sop_instance_uid).toBe(seg.sopInstanceUID);
      expect(r.retrieve_url).toContain(seg.sopInstanceUID);
      expect(r.seg_instance_id).toMatch(/^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/);
      const inst = await orthanc.json<{ MainDicomTags: { SOPInstanceUID: string } }>('GET', `/instances/${r.seg_instance_id}`);
      expect(inst.MainDicomTags.SOPInstanceUID).toBe(seg.sopInstanceUID);
      // Without the Orthanc lookup the SOP Instance UID is the id.
      const plain = await new StowPacsSink({ baseUrl: orthanc.dicomWebUrl, auth: auth(), orthancLookup: false }).store(file, never());
      expect(plain.seg_instance_id).toBe(seg.sopInstanceUID);
    });

    itWeb('sinks: a file that is not DICOM is refused with a clear error', async () => {
      const bad = path.join(tmp, 'not-dicom.dcm');
      await writeFile(bad, 'hello');
      await expect(new OrthancPacsSink({ baseUrl: orthanc.url, auth: auth() }).store(bad, never())).rejects.toThrow(/Orthanc refused not-dicom.dcm/);
      await expect(new StowPacsSink({ baseUrl: orthanc.dicomWebUrl, auth: auth() }).store(bad, never())).rejects.toThrow(/DICOMweb server.*not-dicom.dcm|refused to store not-dicom.dcm/);
    });
  });

  itWeb('check() for lab-agent doctor: ok with the right credentials, a clear reason without the secret otherwise', async () => {
    const ok = await rest().check();
    expect(ok.ok).toBe(true);
    expect(ok.detail).toBe(`Orthanc ${ok.detail.split(' ')[1]} at ${orthanc.url}`);
    expect(ok.detail).toMatch(/^Orthanc \d+\.\d+\.\d+ at /);
    const bad = await rest({ auth: { kind: 'basic', user: 'lab', password: 'nope-pw-77' }, attempts: 1 }).check();
    expect(bad.ok).toBe(false);
    expect(bad.detail).toMatch(/refused the credentials/);
    expect(bad.detail).not.toContain('nope-pw-77');
    expect(await web().check()).toEqual({ ok: true, detail: `DICOMweb at ${orthanc.dicomWebUrl}` });
    expect((await new OrthancPacsSink({ baseUrl: orthanc.url, auth: auth() }).check()).ok).toBe(true);
    expect((await new StowPacsSink({ baseUrl: orthanc.dicomWebUrl, auth: auth() }).check()).ok).toBe(true);
  });

  // Last: it stops the server.
  it('Orthanc stopped: connection refused is retried, then a clear retryable error within a bounded time', async () => {
    await orthanc.kill();
    const jobDir = await freshDir();
    const t0 = Date.now();
    const ids = ['t1', 't1c', 't2', 'flair'].map((s) => series[s]!.id);
    const err = await failure<RunnerFailure>(fetchStudy(rest({ attempts: 3, backoffBaseMs: 100, backoffCapMs: 200 }), ids, jobDir, never()));
    expect(err).toBeInstanceOf(RunnerFailure);
    expect(err.message).toMatch(/cannot fetch the t1c? series: Orthanc at http:\/\/127\.0\.0\.1:\d+ is unreachable for series .*: connection refused \(after 3 attempts\)/);
    expect(err.retryable).toBe(true);
    expect(err.message).not.toContain(orthanc.password);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await listFiles(jobDir)).toEqual([]);
  });
});
