/**
 * The built-in onnx runner behind the real agent and API: `lab-agent run --runner onnx` (its own
 * process, so onnxruntime runs outside Jest's vm realm) fetches a phantom study from a folder source,
 * runs a tiny fixture model, and delivers a result the API accepts. The model's answer is meaningless
 * (the segmentation quality is the pipeline's own tests' business); the wiring is what is checked.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { synthesizePhantom } from '../../lab-agent/src/phantom/synthesize.js';
import { writePhantomStudy } from '../../lab-agent/src/phantom/write-study.js';
import { AGENT_TOKEN, ROOT, exited, linesEventually, type LogLine, removeDir, spawnAgent, startApi, tempDir, waitFor, type TestApi } from './helpers.js';

let api: TestApi;
let dir: string;
let agent: ChildProcess & { lines: Array<Record<string, unknown>>; output: () => string };

beforeAll(async () => {
  dir = tempDir('onnx');
  api = await startApi({ leaseSeconds: 10 });
  await writePhantomStudy(synthesizePhantom({ seed: 3, size: [24, 24, 12] }), join(dir, 'study'));
  writeFileSync(
    join(dir, 'model.json'),
    JSON.stringify({
      name: 'fixture',
      version: '0.0.1',
      onnx: join(ROOT, 'test/model/fixtures/mix2to3.onnx'),
      input_name: 'input',
      output_name: 'output',
      channels: ['t1', 'flair'],
      normalisation: 'none',
      roi_size: [8, 8, 8],
      overlap: 0.25,
      output: { convention: 'sigmoid_tc_wt_et' },
      labels: [
        { value: 1, name: 'necrotic_core', type: { value: '6574001', scheme: 'SCT', meaning: 'Necrosis' } },
        { value: 2, name: 'edema', type: { value: '79654002', scheme: 'SCT', meaning: 'Edema' } },
        { value: 3, name: 'enhancing', type: { value: 'C113842', scheme: 'NCIt', meaning: 'Enhancing Lesion' } },
      ],
    }),
  );
});

afterAll(async () => {
  if (agent && agent.exitCode === null && agent.signalCode === null) {
    agent.kill('SIGTERM');
    await exited(agent).catch(() => agent.kill('SIGKILL'));
  }
  await api.stop();
  removeDir(dir);
});

describe('lab-agent run --runner onnx', () => {
  it('runs a job through the image source and the model, reporting pipeline progress, and delivers the result', async () => {
    agent = spawnAgent(
      ['run', '--api-url', api.url, '--runner', 'onnx', '--source', `folder:${join(dir, 'study')}`, '--model', join(dir, 'model.json'), '--outbox', join(dir, 'outbox'), '--work-dir', join(dir, 'work'), '--poll-wait', '5', '--log-format', 'json'],
      { INFERENCE_AGENT_TOKEN: AGENT_TOKEN },
    );
    await waitFor('the agent to load the model and start polling', () => agent.lines.some((l) => l.event === 'ready') || agent.exitCode !== null, 40_000);
    if (!agent.lines.some((l) => l.event === 'ready')) throw new Error(`the agent did not start:\n${agent.output().slice(-3000)}`);
    await api.start('onnx-study', ['t1', 't1c', 't2', 'flair']);
    const done = await waitFor('the job to end', async () => {
      const s = await api.status('onnx-study');
      return s.status === 'completed' || s.status === 'failed' ? s : null;
    }, 60_000, 250);
    if (done.status !== 'completed') throw new Error(`job ${done.status}: ${done.error}\nagent output:\n${agent.output().slice(-3000)}`);
    expect(done.status).toBe('completed');
    expect(done.result).toMatchObject({ success: true, tumor_detected: expect.any(Boolean), volumes_ml: expect.any(Object) });
    const stages = new Set(agent.lines.filter((l) => l.event === 'progress').map((l) => l.stage));
    expect(stages.has('fetch')).toBe(true);
    expect(await linesEventually(agent.lines as LogLine[], (l) => l.event === 'delivered', 1)).toHaveLength(1);
  }, 90_000);
});
