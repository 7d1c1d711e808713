/**
 * `lab-agent doctor`: is this PC ready to take jobs? Every check runs (one failure does not hide the
 * next), and the answer is a table plus an exit code: non-zero when a required check failed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ApiClient } from './api-client.js';
import type { AgentConfig } from './config.js';
import { AuthError, errorMessage } from './errors.js';
import type { ProviderProbe } from './ort-probe.js';
import type { Runner } from './runners/types.js';

/** `n/a`: not available and not needed (an optional GPU provider, a check that does not apply). */
export type CheckStatus = 'ok' | 'FAIL' | 'warn' | 'n/a';

export interface DoctorRow {
  check: string;
  status: CheckStatus;
  required: boolean;
  detail: string;
}

export interface DoctorDeps {
  client: Pick<ApiClient, 'health' | 'probeToken'>;
  /** The runner, or why it could not be created. */
  runner: Runner | Error;
  probeProviders(): Promise<ProviderProbe[]>;
}

const row = (check: string, ok: boolean, required: boolean, detail: string): DoctorRow => ({
  check,
  status: ok ? 'ok' : required ? 'FAIL' : 'warn',
  required,
  detail,
});

export async function runDoctor(cfg: AgentConfig, deps: DoctorDeps): Promise<DoctorRow[]> {
  const rows: DoctorRow[] = [];
  rows.push({ check: 'configuration', status: 'ok', required: true, detail: `API ${cfg.apiUrl}, runner ${cfg.runner}, ${cfg.slots} slot(s), agent id ${cfg.agentId}` });

  for (const [name, dir] of [['outbox folder', cfg.outbox], ['work folder', cfg.workDir]] as const) {
    rows.push(await writable(name, dir));
  }

  try {
    const h = await deps.client.health();
    rows.push(row('API reachable', h.ok, true, h.ok ? `${cfg.apiUrl} answers; job store: ${h.store ?? '?'}` : `the API answers but its job store does not: ${h.error ?? 'unknown'}`));
  } catch (err) {
    rows.push(row('API reachable', false, true, errorMessage(err)));
  }
  try {
    await deps.client.probeToken();
    rows.push(row('agent token', true, true, 'accepted as an agent token'));
  } catch (err) {
    rows.push(row('agent token', false, true, err instanceof AuthError ? err.message : `not checked: ${errorMessage(err)}`));
  }

  const runner = deps.runner;
  if (runner instanceof Error) {
    rows.push(row(`runner: ${cfg.runner}`, false, true, runner.message.replace(/\s*\n\s*/g, ' ')));
  } else if (runner.check) {
    try {
      rows.push(...(await runner.check()).map((c) => row(c.name, c.ok, c.required, c.detail)));
    } catch (err) {
      rows.push(row(`runner: ${runner.name}`, false, true, `check failed: ${errorMessage(err)}`));
    }
  } else {
    rows.push({ check: `runner: ${runner.name}`, status: 'ok', required: true, detail: 'created (it has no further checks)' });
  }

  const onnx = cfg.runner === 'onnx';
  for (const p of await deps.probeProviders()) {
    // CPU is what the onnx runner falls back to, so it is required there; GPUs only make it faster.
    const required = onnx && p.provider === 'cpu';
    const requested = onnx && p.provider === cfg.provider;
    const detail = p.ok ? p.detail : `${p.detail}${hint(p)}${requested ? ' -> the onnx runner will fall back to CPU' : ''}`;
    rows.push({ check: `onnxruntime ${p.provider}${requested ? ' (requested)' : ''}`, status: p.ok ? 'ok' : required || requested ? (required ? 'FAIL' : 'warn') : 'n/a', required, detail: p.ok ? `available: ${detail}` : `not available: ${detail}` });
  }

  const source = runner instanceof Error ? undefined : runner.source;
  if (source?.check) {
    try {
      const s = await source.check();
      rows.push(row(`image source: ${source.name}`, s.ok, true, s.detail));
    } catch (err) {
      rows.push(row(`image source: ${source.name}`, false, true, errorMessage(err)));
    }
  } else {
    rows.push({
      check: 'image source',
      status: 'n/a',
      required: false,
      detail: cfg.runner === 'command' ? 'the command runner\'s program fetches its own images' : source ? `${source.name} (no check available)` : 'none configured by the runner',
    });
  }
  return rows;
}

function hint(p: ProviderProbe): string {
  if (p.provider === 'cuda') return ' (Linux + CUDA 12: reinstall with `npm ci --onnxruntime-node-install=cuda12`, and install cuDNN 9)';
  if (p.provider === 'dml' && process.platform !== 'win32') return ' (DirectML exists only on Windows)';
  if (p.provider === 'webgpu') return ' (needs a GPU adapter through Vulkan on Linux or D3D12 on Windows)';
  return '';
}

async function writable(name: string, dir: string): Promise<DoctorRow> {
  const probe = join(dir, `.doctor-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(probe, 'ok');
    await rm(probe, { force: true });
    return row(name, true, true, `${dir} is writable`);
  } catch (err) {
    return row(name, false, true, `${dir}: ${errorMessage(err)}`);
  }
}

export function formatTable(rows: DoctorRow[]): string {
  const w1 = Math.max(5, ...rows.map((r) => r.check.length));
  const w2 = 6;
  const lines = [`${'CHECK'.padEnd(w1)}  ${'STATUS'.padEnd(w2)}  DETAIL`, `${'-'.repeat(w1)}  ${'-'.repeat(w2)}  ${'-'.repeat(40)}`];
  for (const r of rows) lines.push(`${r.check.padEnd(w1)}  ${r.status.padEnd(w2)}  ${r.detail}`);
  const failed = rows.filter((r) => r.status === 'FAIL').length;
  lines.push('', failed ? `${failed} required check(s) failed.` : 'All required checks passed.');
  return lines.join('\n');
}

export function doctorExitCode(rows: DoctorRow[]): number {
  return rows.some((r) => r.status === 'FAIL') ? 1 : 0;
}
