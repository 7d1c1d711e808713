/** @jest-environment ./test/model/ort-environment.cjs */
// End to end: a phantom study in a real Orthanc -> the job API -> the agent with the onnx runner reading
// through the Orthanc REST source (SEG back with POST /instances) and through the DICOMweb source (SEG back
// with STOW-RS) -> the SEG is in Orthanc, in the study, and references the reference (FLAIR) series.
// The model is the 2-channel test fixture (the demo model is not needed to prove the plumbing).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Agent } from '../../lab-agent/src/agent.js';
import { ApiClient } from '../../lab-agent/src/api-client.js';
import { createLogger } from '../../lab-agent/src/log.js';
import { Outbox } from '../../lab-agent/src/outbox.js';
import { OnnxRunner } from '../../lab-agent/src/runners/onnx.js';
import { jsonView } from '../../lab-agent/src/view/json.js';
import { DicomWebSource } from '../../lab-agent/src/sources/dicomweb.js';
import { OrthancSource } from '../../lab-agent/src/sources/orthanc.js';
import type { SeriesSource } from '../../lab-agent/src/sources/types.js';
import { OrthancPacsSink } from '../../lab-agent/src/sinks/pacs-orthanc.js';
import type { PacsSink } from '../../lab-agent/src/sinks/pacs-sink.js';
import { StowPacsSink } from '../../lab-agent/src/sinks/pacs-stow.js';
import { AGENT_TOKEN, startAgent, startApi, waitFor, type TestApi } from '../agent/helpers.js';
import { fixtureManifest, writeManifest } from '../model/helpers.js';
import { hasDicomWebPlugin, hasOrthanc, startOrthanc, uploadStudy, warnIfNoOrthanc, type OrthancServer, type UploadedSeries } from '../harness/orthanc.js';
import { removeDir, tempDir, writeSmallStudy } from './helpers.js';

warnIfNoOrthanc('end to end: Orthanc -> API -> agent -> SEG in Orthanc', true);
const d = hasOrthanc && hasDicomWebPlugin ? describe : describe.skip;
const MODS = ['t1', 't1c', 't2', 'flair'] as const;

d('end to end through Orthanc, the job API and the agent', () => {
  let orthanc: OrthancServer;
  let api: TestApi;
  let tmp: string;
  let series: Record<string, UploadedSeries>;
  let manifest: string;

  beforeAll(async () => {
    tmp = await tempDir('e2e');
    await writeSmallStudy(path.join(tmp, 'study'), 23);
    orthanc = await startOrthanc();
    series = await uploadStudy(orthanc, path.join(tmp, 'study'));
    manifest = await writeManifest(fixtureManifest());
    // A short lease: a job handed to a long-poll whose agent has just stopped waits for the lease to
    // expire before another agent gets it (seen here as "attempt 2 of 3"); 8 s keeps that wait short.
    api = await startApi({ leaseSeconds: 8 });
  });
  afterAll(async () => {
    await api?.stop();
    await orthanc?.stop();
    await removeDir(tmp);
    if (manifest) await removeDir(path.dirname(manifest));
  });

  async function runJob(name: string, source: SeriesSource, sink: PacsSink, ids: string[]) {
    const work = path.join(tmp, `work-${name}`);
    const runner = new OnnxRunner({
      source,
      modelPath: manifest,
      provider: 'cpu',
      intraOpThreads: 1,
      storeSeg: async (segPath, ctx) => (await sink.store(segPath, ctx.signal)).seg_instance_id,
    });
    const agent = new Agent({
      client: new ApiClient({ apiUrl: api.url, token: AGENT_TOKEN, agentId: `e2e-${name}` }),
      runner,
      outbox: new Outbox(path.join(tmp, `outbox-${name}`)),
      // E2E_DEBUG=1 prints the agent's log.
      log: createLogger({ view: jsonView((l) => process.env.E2E_DEBUG && console.log(l)), level: 'DEBUG' }),
      agentId: `e2e-${name}`,
      slots: 1,
      pollWaitS: 1,
      workRoot: work,
      jobTimeoutMs: 120_000,
      graceMs: 1000,
      maxBackoffMs: 1000,
    });
    const done = agent.run();
    try {
      await api.start(ids[3]!, ids);
      const status = await waitFor(`${name} job to finish`, async () => {
        const s = await api.status(ids[3]!);
        return s.status === 'completed' || s.status === 'failed' ? s : null;
      }, 90_000, 200);
      return { status, work };
    } finally {
      agent.stop();
      await done;
      await runner.close();
    }
  }

  async function expectSegInOrthanc(segId: string) {
    const inst = await orthanc.json<{ ParentSeries: string }>('GET', `/instances/${segId}`);
    const tags = await orthanc.json<Record<string, unknown>>('GET', `/instances/${segId}/tags?simplify`);
    expect(tags.SOPClassUID).toBe('1.2.840.10008.5.1.4.1.1.66.4');
    expect(tags.StudyInstanceUID).toBe(series.flair!.studyInstanceUID);
    const refs = tags.ReferencedSeriesSequence as Array<{ SeriesInstanceUID: string; ReferencedInstanceSequence: unknown[] }>;
    expect(refs.map((r) => r.SeriesInstanceUID)).toEqual([series.flair!.seriesInstanceUID]);
    expect(refs[0]!.ReferencedInstanceSequence.length).toBeGreaterThan(0);
    // Same study in Orthanc as the inputs.
    const segSeries = await orthanc.json<{ ParentStudy: string }>('GET', `/series/${inst.ParentSeries}`);
    const flair = await orthanc.json<{ ParentStudy: string }>('GET', `/series/${series.flair!.id}`);
    expect(segSeries.ParentStudy).toBe(flair.ParentStudy);
  }

  it('REST source + POST /instances sink: completed, seg_instance_id is the Orthanc ID of a SEG on the FLAIR series', async () => {
    const auth = { kind: 'basic' as const, user: orthanc.user, password: orthanc.password };
    const ids = MODS.map((m) => series[m]!.id);
    const { status, work } = await runJob('rest', new OrthancSource({ baseUrl: orthanc.url, auth }), new OrthancPacsSink({ baseUrl: orthanc.url, auth }), ids);
    expect([status.status, status.error ?? null]).toEqual(['completed', null]);
    expect(status.seg_instance_id).toMatch(/^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/);
    await expectSegInOrthanc(status.seg_instance_id!);
    // The per-job download folder is gone with the job.
    expect(existsSync(work) ? await readdir(work) : []).toEqual([]);
  });

  it('configured as an operator would: lab-agent run --runner onnx --source orthanc:URL, credentials from the environment', async () => {
    // Goes through the agent's config and runner registry, which hand --source, the source/PACS flags and
    // the environment to sources/registry.ts; AGENT_PACS=orthanc stores the SEG back with the source's
    // server and credentials.
    const ids = MODS.map((m) => series[m]!.id);
    const a = await startAgent(
      { apiUrl: api.url, runner: 'onnx', source: `orthanc:${orthanc.url}`, model: manifest, outbox: path.join(tmp, 'cli-outbox'), workDir: path.join(tmp, 'cli-work'), pollWait: '1', maxBackoff: '1', agentId: 'e2e-cli' },
      { AGENT_SOURCE_USER: orthanc.user, AGENT_SOURCE_PASSWORD: orthanc.password, AGENT_PACS: 'orthanc' },
    );
    try {
      await api.start(`cli-${ids[3]!}`, ids);
      const status = await waitFor('the CLI-configured job to finish', async () => {
        const s = await api.status(`cli-${ids[3]!}`);
        return s.status === 'completed' || s.status === 'failed' ? s : null;
      }, 90_000, 200);
      expect([status.status, status.error ?? null]).toEqual(['completed', null]);
      expect(status.seg_instance_id).toMatch(/^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/);
      await expectSegInOrthanc(status.seg_instance_id!);
      // The password never reaches the agent's log.
      expect(JSON.stringify(a.lines)).not.toContain(orthanc.password);
    } finally {
      await a.stop();
    }
  });

  it('DICOMweb source (STUDY:SERIES ids) + STOW-RS sink: the same, through /dicom-web', async () => {
    const auth = { kind: 'basic' as const, user: orthanc.user, password: orthanc.password };
    const ids = MODS.map((m) => `${series[m]!.studyInstanceUID}:${series[m]!.seriesInstanceUID}`);
    const { status } = await runJob('dicomweb', new DicomWebSource({ baseUrl: orthanc.dicomWebUrl, auth }), new StowPacsSink({ baseUrl: orthanc.dicomWebUrl, auth }), ids);
    expect([status.status, status.error ?? null]).toEqual(['completed', null]);
    expect(status.seg_instance_id).toMatch(/^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/);
    await expectSegInOrthanc(status.seg_instance_id!);
  });
});
