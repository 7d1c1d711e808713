import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  target?: string;
  pass?: boolean;
}

export function machine(): string {
  const c = cpus();
  return `${c.length} x ${c[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

export function printTable(title: string, rows: BenchRow[]): void {
  const head = ['benchmark', 'value', 'unit', 'target', 'ok'];
  const body = rows.map((r) => [r.name, fmt(r.value), r.unit, r.target ?? '', r.pass === undefined ? '' : r.pass ? 'yes' : 'NO']);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(w[i]!)).join(' | ') + ' |';
  console.log(`\n${title}\n` + [line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)].join('\n'));
}

export function saveResults(name: string, rows: BenchRow[]): string {
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, JSON.stringify({ name, machine: machine(), at: new Date().toISOString(), rows }, null, 2));
  return file;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

const REPORT = 'bench/REPORT.md';
const STATE = 'bench/report-rows.json';

/**
 * bench/REPORT.md: one table of every benchmark with its target and the machine it ran on. Rows of
 * groups not run this time are kept from the previous report (bench/report-rows.json).
 */
export function writeReport(rows: BenchRow[], onlyGroups: string[] | null): string {
  type Stored = BenchRow & { machine: string; at: string };
  const now = new Date().toISOString();
  const fresh: Stored[] = rows.map((r) => ({ ...r, machine: machine(), at: now }));
  let kept: Stored[] = [];
  if (onlyGroups && existsSync(STATE)) {
    kept = (JSON.parse(readFileSync(STATE, 'utf8')) as Stored[]).filter((r) => !onlyGroups.some((g) => r.name.startsWith(`${g}: `)));
  }
  const all = [...kept, ...fresh].sort((a, b) => a.name.localeCompare(b.name));
  writeFileSync(STATE, JSON.stringify(all, null, 2) + '\n');
  const machines = [...new Set(all.map((r) => r.machine))];
  const lines = [
    '# Benchmark report',
    '',
    'Written by `npm run bench` (measurements, not tests). Each row: the value measured, its target where the',
    'project set one, and whether it was met. Rows from runs of single groups (`npm run bench -- api`) keep',
    'their own date.',
    '',
    ...machines.map((m, i) => `- machine ${String.fromCharCode(65 + i)}: ${m}`),
    '',
    '| benchmark | value | unit | target | met | machine | measured |',
    '| --- | ---: | --- | --- | --- | --- | --- |',
    ...all.map((r) => `| ${r.name} | ${fmt(r.value)} | ${r.unit} | ${r.target ?? ''} | ${r.pass === undefined ? '' : r.pass ? 'yes' : '**no**'} | ${String.fromCharCode(65 + machines.indexOf(r.machine))} | ${r.at.slice(0, 16).replace('T', ' ')} |`),
    '',
  ];
  writeFileSync(REPORT, lines.join('\n'));
  return REPORT;
}
