// The folder source, the source/sink settings (flag > env > default, messages without secrets) and the
// factories.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { statSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../../lab-agent/src/errors.js';
import { DicomWebSource, FolderSource, OrthancSource, createSource, describeSource, fetchStudy, parseDicomWebSeriesId, resolveSourceConfig, type StudyProgress } from '../../lab-agent/src/sources/index.js';
import { createSource as createFromSpec, createStoreSeg } from '../../lab-agent/src/sources/registry.js';
import { createPacsSink, resolvePacsConfig } from '../../lab-agent/src/sinks/pacs-config.js';
import { OrthancPacsSink } from '../../lab-agent/src/sinks/pacs-orthanc.js';
import { StowPacsSink } from '../../lab-agent/src/sinks/pacs-stow.js';
import { failure, hashes, listFiles, removeDir, tempDir, writeSmallStudy } from './helpers.js';

describe('folder source', () => {
  let tmp: string;
  let root: string;
  beforeAll(async () => {
    tmp = await tempDir('folder');
    root = path.join(tmp, 'root');
    await writeSmallStudy(root, 3, [16, 16, 6]);
    await mkdir(path.join(tmp, 'outside'));
    await writeFile(path.join(tmp, 'outside', 'secret.dcm'), 'x');
    await symlink(path.join(tmp, 'outside'), path.join(root, 'escape'));
    await mkdir(path.join(root, 'empty'));
  });
  afterAll(() => removeDir(tmp));

  it('copies a series folder and reports progress; fetchStudy fills t1/t1c/t2/flair', async () => {
    const src = new FolderSource(root);
    const dest = path.join(tmp, 'dest1');
    await mkdir(dest);
    const seen: number[] = [];
    const files = await src.fetchSeries('t2', dest, new AbortController().signal, (p) => seen.push(p.files));
    expect(await hashes(files)).toEqual(await hashes(await listFiles(path.join(root, 't2'))));
    expect(seen.at(-1)).toBe(6);
    let last: StudyProgress | undefined;
    const study = await fetchStudy(src, ['t1', 't1c', 't2', 'flair'], path.join(tmp, 'job'), new AbortController().signal, (p) => (last = p));
    expect(study.flair).toHaveLength(6);
    // Concurrent copies must not lose byte counts.
    const all = (await listFiles(path.join(tmp, 'job'))).map((f) => statSync(f).size);
    expect(last).toMatchObject({ files: 24, totalFiles: 24, bytes: all.reduce((a, b) => a + b, 0) });
  });

  it('refuses ids that leave the root: "..", absolute paths, links to outside; unknown and empty folders are named', async () => {
    const src = new FolderSource(root);
    const dest = path.join(tmp, 'dest2');
    await mkdir(dest);
    const sig = new AbortController().signal;
    for (const bad of ['..', '../outside', 't1/../../outside', path.join(tmp, 'outside'), '/etc', '.', '']) {
      await expect(src.fetchSeries(bad, dest, sig)).rejects.toThrow(/not a folder name inside the source root/);
    }
    await expect(src.fetchSeries('escape', dest, sig)).rejects.toThrow('series escape: the folder links outside the source root');
    await expect(src.fetchSeries('nope', dest, sig)).rejects.toThrow(`series nope: no such folder in ${root}`);
    await expect(src.fetchSeries('empty', dest, sig)).rejects.toThrow('series empty: no files in');
    expect(await listFiles(dest)).toEqual([]);
  });

  it('fetchStudy: a failing series removes every series folder; the error names the modality, not retryable', async () => {
    const job = path.join(tmp, 'job2');
    const err = await failure<Error & { retryable: boolean }>(fetchStudy(new FolderSource(root), ['t1', 't1c', 'nope', 'flair'], job, new AbortController().signal));
    expect(err.message).toBe(`cannot fetch the t2 series: series nope: no such folder in ${root}`);
    expect(err.retryable).toBe(false);
    expect(await listFiles(job)).toEqual([]);
    await expect(fetchStudy(new FolderSource(root), ['t1'], job, new AbortController().signal)).rejects.toThrow(/needs 4 series ids/);
  });

  it('abort: rejects with the reason and leaves nothing', async () => {
    const job = path.join(tmp, 'job3');
    const ac = new AbortController();
    const p = fetchStudy(new FolderSource(root, { concurrency: 1 }), ['t1', 't1c', 't2', 'flair'], job, ac.signal, (e) => {
      if (e.files === 3) ac.abort(new Error('cancelled by user'));
    });
    await expect(p).rejects.toThrow('cancelled by user');
    expect(await listFiles(job)).toEqual([]);
  });
});

describe('source and sink settings', () => {
  it('flag > environment > default; the factory builds the right source', () => {
    expect(resolveSourceConfig({}, {})).toMatchObject({ kind: 'orthanc', url: 'http://127.0.0.1:8042', concurrency: 4, timeout: 30, attempts: 5 });
    const c = resolveSourceConfig({ sourceUrl: 'http://pacs:8042/dicom-web' }, { AGENT_SOURCE: 'dicomweb', AGENT_SOURCE_URL: 'http://ignored', AGENT_SOURCE_TOKEN: 't0k' });
    expect(c).toMatchObject({ kind: 'dicomweb', url: 'http://pacs:8042/dicom-web', token: 't0k' });
    expect(createSource(c)).toBeInstanceOf(DicomWebSource);
    expect(createSource(resolveSourceConfig({}, { ORTHANC_URL: 'http://o:8042', ORTHANC_USER: 'u', ORTHANC_PASSWORD: 'pw' }))).toBeInstanceOf(OrthancSource);
    expect(createSource(resolveSourceConfig({ source: 'folder', sourceRoot: '/data' }, {}))).toBeInstanceOf(FolderSource);
    expect(describeSource(resolveSourceConfig({}, { AGENT_SOURCE_USER: 'u', AGENT_SOURCE_PASSWORD: 'hunter2-pw' }))).not.toContain('hunter2-pw');
    // The agent's --source spec form, kind:location, from the environment too.
    expect(resolveSourceConfig({}, { AGENT_SOURCE: 'folder:/data/x' })).toMatchObject({ kind: 'folder', root: '/data/x' });
    expect(resolveSourceConfig({}, { AGENT_SOURCE: 'dicomweb:http://h/dicom-web' })).toMatchObject({ kind: 'dicomweb', url: 'http://h/dicom-web' });
    expect(resolveSourceConfig({ sourceUrl: 'http://explicit:1' }, { AGENT_SOURCE: 'orthanc:http://spec:2' })).toMatchObject({ url: 'http://explicit:1' });
  });

  it('invalid settings name the flag and variable and never echo a secret', () => {
    const bad = (flags: Record<string, string>, env: Record<string, string> = {}) => {
      try {
        resolveSourceConfig(flags, env);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    expect(bad({ source: 'ftp' })).toMatch(/--source \/ AGENT_SOURCE: must be one of orthanc, dicomweb, folder/);
    expect(bad({ source: 'dicomweb' })).toMatch(/--source-url \/ AGENT_SOURCE_URL \/ ORTHANC_URL: is required for the dicomweb source/);
    expect(bad({ source: 'folder' })).toMatch(/--source-root \/ AGENT_SOURCE_ROOT: is required/);
    const m = bad({ sourceUrl: 'http://admin:hunter2-pw@pacs:8042' });
    expect(m).toMatch(/must not contain credentials/);
    expect(m).not.toContain('hunter2-pw');
    expect(bad({ sourceUser: 'u' })).toMatch(/--source-password .*user and password go together/);
    expect(bad({ sourceToken: 'tok-secret', sourceUser: 'u', sourcePassword: 'p' })).not.toContain('tok-secret');
    expect(bad({ sourceConcurrency: '0' })).toMatch(/--source-concurrency .*at least 1/);
  });

  it('spec strings as the agent passes them: kind[:location]', () => {
    expect(createFromSpec('folder:/data/studies', {})).toBeInstanceOf(FolderSource);
    expect(createFromSpec('orthanc:http://pacs:8042', { AGENT_SOURCE_USER: 'u', AGENT_SOURCE_PASSWORD: 'p' })).toBeInstanceOf(OrthancSource);
    expect(createFromSpec('dicomweb:https://h/dicom-web', {})).toBeInstanceOf(DicomWebSource);
    expect(() => createFromSpec('s3:bucket', {})).toThrow(/--source \/ AGENT_SOURCE: must be one of/);
    expect(createStoreSeg('orthanc', {})).toBeUndefined();
    expect(typeof createStoreSeg('orthanc', { AGENT_PACS: 'orthanc' })).toBe('function');
  });

  it('the PACS sink reuses the source server and credentials when it is the same kind', () => {
    const src = resolveSourceConfig({}, { AGENT_SOURCE: 'dicomweb', AGENT_SOURCE_URL: 'http://o/dicom-web', AGENT_SOURCE_USER: 'u', AGENT_SOURCE_PASSWORD: 'p' });
    expect(resolvePacsConfig({}, {}, src)).toEqual({ kind: 'none' });
    expect(resolvePacsConfig({}, { AGENT_PACS: 'stow' }, src)).toMatchObject({ kind: 'stow', url: 'http://o/dicom-web', user: 'u', password: 'p' });
    expect(createPacsSink(resolvePacsConfig({}, { AGENT_PACS: 'stow' }, src))).toBeInstanceOf(StowPacsSink);
    expect(() => resolvePacsConfig({}, { AGENT_PACS: 'orthanc' }, src)).toThrow(/--pacs-url \/ AGENT_PACS_URL: is required/);
    const other = resolvePacsConfig({ pacsUrl: 'http://archive:8042' }, { AGENT_PACS: 'orthanc' }, resolveSourceConfig({}, { AGENT_SOURCE_USER: 'u', AGENT_SOURCE_PASSWORD: 'p' }));
    expect(other).toMatchObject({ kind: 'orthanc', url: 'http://archive:8042' });
    expect(other).not.toHaveProperty('password', 'p'); // another server does not get the source's password
    expect(createPacsSink(other)).toBeInstanceOf(OrthancPacsSink);
    expect(() => resolvePacsConfig({ pacs: 'gcs' }, {})).toThrow(/--pacs \/ AGENT_PACS: must be one of none, orthanc, stow/);
  });

  it('DICOMweb ids: STUDY:SERIES or SERIES', () => {
    expect(parseDicomWebSeriesId('1.2.3:4.5.6')).toEqual({ study: '1.2.3', series: '4.5.6' });
    expect(parseDicomWebSeriesId('4.5.6')).toEqual({ series: '4.5.6' });
    for (const bad of ['1.2:3:4', 'a.b', '1..2', '1.2/3', '', `${'1'.repeat(65)}`]) expect(() => parseDicomWebSeriesId(bad)).toThrow(/expected STUDY_UID:SERIES_UID/);
  });
});
