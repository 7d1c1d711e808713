// `lab-agent segment` as a user runs it: its own process (npm run segment == tsx lab-agent/src/cli/segment.ts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CompleteRequest } from '@lab-relay/protocol';
import { synthesizePhantom } from '../../lab-agent/src/phantom/synthesize.js';
import { writePhantomStudy } from '../../lab-agent/src/phantom/write-study.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let tmp: string;

function segment(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'lab-agent/src/cli/segment.ts'), ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'segment-cli-'));
  await writePhantomStudy(synthesizePhantom({ seed: 2003 }), path.join(tmp, 'study'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('lab-agent segment', () => {
  it('writes seg.dcm, preview.png and a result.json that the complete endpoint accepts, with the demo model by default', async () => {
    const out = path.join(tmp, 'out');
    const r = await segment(['--study', path.join(tmp, 'study'), '--out', out, '--threads', '2', '--provider', 'cuda']);
    expect(r.stderr).toContain("execution provider 'cuda' could not start");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^whole tumour [\d.]+ mL/);
    const result = JSON.parse(await readFile(path.join(out, 'result.json'), 'utf8'));
    expect(CompleteRequest.safeParse(result).success).toBe(true);
    expect(result).toMatchObject({ success: true, tumor_detected: true, model: { name: 'lab-relay-demo-phantom-unet' }, execution_provider: 'cpu' });
    const truth = JSON.parse(await readFile(path.join(tmp, 'study', 'truth.json'), 'utf8'));
    expect(Math.abs(result.whole_tumor_ml - truth.whole_tumor_ml) / truth.whole_tumor_ml).toBeLessThanOrEqual(0.1);
    expect(existsSync(path.join(out, 'seg.dcm'))).toBe(true);
    expect(existsSync(path.join(out, 'preview.png'))).toBe(true);
  });

  it('fails with exit code 1 and a message naming the problem', async () => {
    const r1 = await segment(['--study', path.join(tmp, 'nope'), '--out', path.join(tmp, 'o1')]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain(`segment: study folder ${path.join(tmp, 'nope')} does not exist`);
    const r2 = await segment(['--study', path.join(tmp, 'study', 'flair'), '--out', path.join(tmp, 'o2')]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain(`segment: series flair (${path.join(tmp, 'study', 'flair', 'flair')}): cannot read the folder`);
    const r3 = await segment(['--study', path.join(tmp, 'study'), '--out', path.join(tmp, 'o3'), '--model', path.join(tmp, 'no-model')]);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toContain(`cannot read model manifest ${path.join(tmp, 'no-model', 'model.json')}`);
  });
});
