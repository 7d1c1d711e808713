/** @jest-environment ./test/model/ort-environment.cjs */
import { describe, expect, it } from '@jest/globals';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { parseManifest, readManifest } from '../../lab-agent/src/imaging/model/manifest.js';
import { loadModel, SharedModel } from '../../lab-agent/src/imaging/model/load-model.js';
import { openSession } from '../../lab-agent/src/imaging/inference/session.js';
import { FIXTURES, fixtureManifest, writeManifest } from './helpers.js';

describe('model manifest schema', () => {
  it('fills defaults', () => {
    const m = parseManifest(fixtureManifest());
    expect(m.reference_modality).toBe('flair');
    expect(m.allow_different_frame_of_reference).toBe(false);
    expect(m.axis_order).toBe('xyz');
    expect(m.spatial_multiple).toBe(1);
    expect(m.output).toEqual({ convention: 'sigmoid_tc_wt_et', threshold: 0.5, activation: 'logits', label_values: { core: 1, edema: 2, enhancing: 3 } });
    expect(m.labels[0]!.category).toEqual({ value: '49755003', scheme: 'SCT', meaning: 'Morphologically abnormal structure' });
  });

  it.each([
    [{ channels: ['t1', 'dwi'] }, 'channels.1'],
    [{ channels: ['t1', 't1'] }, 'channels lists a modality twice'],
    [{ roi_size: [8, 8, 12], spatial_multiple: 8 }, 'roi_size[2] = 12 is not a multiple of spatial_multiple 8'],
    [{ overlap: 0.95 }, 'overlap'],
    [{ output: { convention: 'softmax_labels', channel_labels: [0, 1, 4] } }, 'produces label value 4, which labels does not define'],
    [{ output: { convention: 'sigmoid_tc_wt_et', label_values: { core: 1, edema: 1, enhancing: 3 } } }, 'three different values'],
    [{ output: { convention: 'argmax_magic' } }, 'output.convention'],
    [{ labels: [{ value: 1, name: 'Tumour Core', type: { value: '1', scheme: 'SCT', meaning: 'x' } }] }, 'lower snake case'],
    [{ reference_modality: 'pd' }, 'reference_modality'],
  ])('rejects %j naming the problem', (over, message) => {
    expect(() => parseManifest(fixtureManifest(over), 'x.json')).toThrow(message);
  });

  it('reads model.json from a directory and resolves the onnx path beside it', async () => {
    const p = await writeManifest(fixtureManifest({ onnx: 'weights.onnx' }));
    const r = await readManifest(path.dirname(p));
    expect(r.manifestPath).toBe(p);
    expect(r.onnxPath).toBe(path.join(path.dirname(p), 'weights.onnx'));
  });

  it('names the file when JSON is broken or missing', async () => {
    await expect(readManifest('/nonexistent/model.json')).rejects.toThrow('cannot read model manifest /nonexistent/model.json');
  });
});

describe('loadModel checks the ONNX model against its manifest', () => {
  it('loads a matching model and runs it', async () => {
    const model = await loadModel(await writeManifest(fixtureManifest()));
    expect(model.provider).toBe('cpu');
    const r = await model.predict(new Float32Array(2 * 512).fill(1), 2, [8, 8, 8]);
    expect(r.channels).toBe(3);
    expect(r.data[512]).toBeCloseTo(3, 6); // 2 * 1 + 1
    await model.release();
  });

  it.each([
    [{ input_name: 'image' }, "model input 'image' named by the manifest does not exist (model inputs: input)"],
    [{ output_name: 'logits' }, "model output 'logits' named by the manifest does not exist (model outputs: output)"],
    [{ channels: ['t1', 't1c', 'flair'] }, "model input 'input' expects 2 channels, manifest lists 3 (t1, t1c, flair)"],
    [
      { output: { convention: 'softmax_labels', channel_labels: [0, 1, 2, 3] } },
      "model output 'output' has 3 channels, manifest output convention softmax_labels needs 4",
    ],
    [
      { onnx: path.join(FIXTURES, 'identity2_static8.onnx'), roi_size: [16, 16, 16], output: { convention: 'softmax_labels', channel_labels: [0, 1] } },
      'has fixed spatial shape [8, 8, 8] (xyz), manifest roi_size gives [16, 16, 16]',
    ],
  ])('rejects %j', async (over, message) => {
    await expect(loadModel(await writeManifest(fixtureManifest(over)))).rejects.toThrow(message);
  });

  it('names a missing onnx file', async () => {
    await expect(loadModel(await writeManifest(fixtureManifest({ onnx: '/nonexistent/m.onnx' })))).rejects.toThrow('cannot load ONNX model /nonexistent/m.onnx');
  });
});

describe('execution providers', () => {
  // No GPU here: every GPU provider fails at session creation, which must become a CPU fallback.
  it.each(['cuda', 'dml', 'webgpu'] as const)('falls back from %s to CPU with a warning, and the session works', async (provider) => {
    const warnings: string[] = [];
    const s = await openSession(path.join(FIXTURES, 'identity2.onnx'), { provider, onWarning: (m) => warnings.push(m) });
    expect(s.provider).toBe('cpu');
    expect(s.fallbackReason).toBeTruthy();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`execution provider '${provider}' could not start`);
    expect(warnings[0]).toContain('falling back to CPU');
    const out = await s.session.run({ input: new ort.Tensor('float32', new Float32Array(2 * 8).fill(2), [1, 2, 2, 2, 2]) });
    expect((out.output!.data as Float32Array)[5]).toBe(2);
    await s.session.release();
  });

  it('refuses an unknown provider', async () => {
    await expect(openSession(path.join(FIXTURES, 'identity2.onnx'), { provider: 'tpu' as never })).rejects.toThrow("unknown execution provider 'tpu'");
  });

  it('SharedModel loads once and hands every caller the same session', async () => {
    const warnings: string[] = [];
    const shared = new SharedModel(await writeManifest(fixtureManifest()), { provider: 'cuda', onWarning: (m) => warnings.push(m) });
    const [a, b] = await Promise.all([shared.get(), shared.get()]);
    expect(a).toBe(b);
    expect(await shared.get()).toBe(a);
    expect(warnings).toHaveLength(1);
    await shared.close();
  });
});
