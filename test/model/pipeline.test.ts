/** @jest-environment ./test/model/ort-environment.cjs */
// The whole pipeline on a phantom written as real DICOM files: through the onnx runner (FolderSource) and
// through segmentStudy directly, with the committed demo model.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CompleteRequest } from '@lab-relay/protocol';
import { OnnxRunner } from '../../lab-agent/src/runners/onnx.js';
import { FolderSource } from '../../lab-agent/src/sources/folder.js';
import type { JobContext } from '../../lab-agent/src/runners/types.js';
import { synthesizePhantom } from '../../lab-agent/src/phantom/synthesize.js';
import { writePhantomStudy } from '../../lab-agent/src/phantom/write-study.js';
import { DEMO_MODEL_DIR, loadModel, type SegmentationModel } from '../../lab-agent/src/imaging/model/load-model.js';
import { maskToReference, segmentStudy } from '../../lab-agent/src/imaging/pipeline.js';
import { writeManifest } from './helpers.js';

let tmp: string;
let studyDir: string;
let truth: { whole_tumor_ml: number; volumes_ml: Record<string, number> };
let truthLabels: Uint8Array;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pipeline-test-'));
  studyDir = path.join(tmp, 'study');
  // Seed never used for training (1..40) or validation (101..105); the phantom CLI's default geometry.
  await writePhantomStudy(synthesizePhantom({ seed: 2001 }), studyDir, { shuffle: true });
  truth = JSON.parse(await readFile(path.join(studyDir, 'truth.json'), 'utf8'));
  truthLabels = new Uint8Array(await readFile(path.join(studyDir, 'labels.u8')));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function wtDice(a: Uint8Array, b: Uint8Array): number {
  let i = 0, sa = 0, sb = 0;
  for (let p = 0; p < a.length; p++) {
    if (a[p]) sa++;
    if (b[p]) sb++;
    if (a[p] && b[p]) i++;
  }
  return (2 * i) / (sa + sb);
}

function jobContext(workDir: string, signal = new AbortController().signal, series_ids = ['t1', 't1c', 't2', 'flair']) {
  const progress: [string, number][] = [];
  const ctx: JobContext = {
    id: 'job-1', series_id: 'flair', series_ids, workDir, signal,
    progress: (s, p) => progress.push([s, p]),
    log: () => {},
  };
  return { ctx, progress };
}

describe('onnx runner', () => {
  const runner = new OnnxRunner({ source: new FolderSource(path.join(os.tmpdir(), 'unused')), provider: 'cpu', intraOpThreads: 2 });
  afterAll(() => runner.close());

  it('segments a DICOM study: result conforms to the complete schema, volumes near truth, SEG and preview handed to the agent', async () => {
    const r = new OnnxRunner({ source: new FolderSource(studyDir), provider: 'cuda', intraOpThreads: 2, onWarning: () => {} });
    await r.init();
    const work = path.join(tmp, 'work1');
    const { ctx, progress } = jobContext(work);
    const result = await r.run(ctx);
    await r.close();
    // The agent uploads these through the claim's signed URLs (tested in test/agent).
    expect(result.artifacts).toEqual({ seg: path.join(work, 'out', 'seg.dcm'), preview: path.join(work, 'out', 'preview.png') });
    expect(CompleteRequest.safeParse(result).success).toBe(true);
    expect(result).toMatchObject({ success: true, tumor_detected: true, model: { name: 'lab-relay-demo-phantom-unet', version: '1.0.0' }, execution_provider: 'cpu', seg_instance_id: null });
    expect(Object.keys(result.timings!).sort()).toEqual(['fetch', 'infer', 'load', 'normalise', 'postprocess', 'preview', 'resample', 'total', 'write_seg']);
    expect(Math.abs(result.whole_tumor_ml! - truth.whole_tumor_ml) / truth.whole_tumor_ml).toBeLessThanOrEqual(0.1);
    expect(Object.keys(result.volumes_ml!).sort()).toEqual(['edema', 'enhancing', 'necrotic_core']);
    expect(result.inference_time_seconds).toBe(result.timings!.infer);
    expect(existsSync(path.join(work, 'out', 'seg.dcm'))).toBe(true);
    expect((await readFile(path.join(work, 'out', 'preview.png'))).subarray(1, 4).toString()).toBe('PNG');
    const stages = [...new Set(progress.map(([s]) => s))];
    expect(stages).toEqual(['fetch', 'load', 'resample', 'normalise', 'infer', 'postprocess', 'write_seg', 'preview']);
    expect(progress.filter(([s]) => s === 'infer').at(-1)).toEqual(['infer', 100]);
  });

  it('fails naming the series when one is missing', async () => {
    const r = new OnnxRunner({ source: new FolderSource(studyDir), intraOpThreads: 2 });
    const { ctx } = jobContext(path.join(tmp, 'work2'), undefined, ['t1', 't1c', 'nope', 'flair']);
    await expect(r.run(ctx)).rejects.toThrow(/series nope/);
    await r.close();
  });

  it('stops when the job is cancelled', async () => {
    const r = new OnnxRunner({ source: new FolderSource(studyDir), intraOpThreads: 2 });
    const ctrl = new AbortController();
    const { ctx } = jobContext(path.join(tmp, 'work3'), ctrl.signal);
    const orig = ctx.progress;
    ctx.progress = (s, p) => {
      orig(s, p);
      if (s === 'normalise') ctrl.abort(new Error('cancelled by user'));
    };
    await expect(r.run(ctx)).rejects.toThrow('cancelled by user');
    await r.close();
  });

  it('refuses a job with the wrong number of series', async () => {
    const { ctx } = jobContext(path.join(tmp, 'work4'), undefined, ['flair']);
    await expect(runner.run(ctx)).rejects.toThrow('a study needs 4 series ids (t1, t1c, t2, flair), got 1');
  });

  it('reports a model that does not match its manifest in doctor checks', async () => {
    const bad = JSON.parse(await readFile(path.join(DEMO_MODEL_DIR, 'model.json'), 'utf8'));
    bad.onnx = path.join(DEMO_MODEL_DIR, 'model.onnx');
    bad.channels = ['t1', 't2', 'flair'];
    const r = new OnnxRunner({ source: new FolderSource(studyDir), modelPath: await writeManifest(bad) });
    const checks = await r.check();
    expect(checks[0]).toMatchObject({ name: 'model', ok: false, required: true });
    expect(checks[0]!.detail).toContain("model input 'image' expects 4 channels, manifest lists 3");
  });
});

describe('segmentStudy', () => {
  let model: SegmentationModel;
  beforeAll(async () => {
    model = await loadModel(DEMO_MODEL_DIR, { intraOpThreads: 2 });
  });
  afterAll(() => model.release());

  it('reaches whole-tumour Dice >= 0.85 against the truth label map on the FLAIR grid', async () => {
    const out = path.join(tmp, 'out-direct');
    const study = { t1: path.join(studyDir, 't1'), t1c: path.join(studyDir, 't1c'), t2: path.join(studyDir, 't2'), flair: path.join(studyDir, 'flair') };
    const r = await segmentStudy(study, out, { model, signal: new AbortController().signal });
    expect(r.result.success).toBe(true);
    const d = wtDice(r.labels, truthLabels);
    console.log(`DICOM pipeline, seed 2001: Dice WT ${d.toFixed(4)}, ${r.result.whole_tumor_ml} mL vs truth ${truth.whole_tumor_ml} mL; timings ${JSON.stringify(r.result.timings)}`);
    expect(d).toBeGreaterThanOrEqual(0.85);
    expect(Math.abs(r.result.whole_tumor_ml! - truth.whole_tumor_ml) / truth.whole_tumor_ml).toBeLessThanOrEqual(0.1);
  });

  it('series on other grids (coarser, shifted) are resampled to FLAIR and still give Dice >= 0.85, volume within 10%', async () => {
    const dir = path.join(tmp, 'study-differ');
    await writePhantomStudy(synthesizePhantom({ seed: 2002 }), dir, { geometryDiffer: true });
    const t = JSON.parse(await readFile(path.join(dir, 'truth.json'), 'utf8'));
    const labels = new Uint8Array(await readFile(path.join(dir, 'labels.u8')));
    const study = { t1: path.join(dir, 't1'), t1c: path.join(dir, 't1c'), t2: path.join(dir, 't2'), flair: path.join(dir, 'flair') };
    const r = await segmentStudy(study, path.join(tmp, 'out-differ'), { model, signal: new AbortController().signal });
    const d = wtDice(r.labels, labels);
    console.log(`DICOM pipeline, seed 2002 (geometry differs): Dice WT ${d.toFixed(4)}, ${r.result.whole_tumor_ml} mL vs truth ${t.whole_tumor_ml} mL`);
    expect(r.result.timings!.resample).toBeGreaterThan(0);
    expect(d).toBeGreaterThanOrEqual(0.85);
    expect(Math.abs(r.result.whole_tumor_ml! - t.whole_tumor_ml) / t.whole_tumor_ml).toBeLessThanOrEqual(0.1);
  });

  it('masks resampled series to where the reference has signal', () => {
    const data = new Float32Array([5, 0.2, 7, 3]);
    maskToReference(data, new Float32Array([1, 0, 2, 0]));
    expect(Array.from(data)).toEqual([5, 0, 7, 0]);
  });

  it('names the missing series', async () => {
    await expect(segmentStudy({ t1: path.join(studyDir, 't1') }, path.join(tmp, 'o'), { model, signal: new AbortController().signal })).rejects.toThrow(
      'the study has no flair, t1c, t2 series (model lab-relay-demo-phantom-unet needs t1c, t1, t2, flair; reference flair)',
    );
  });
});
