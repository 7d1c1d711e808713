/**
 * `npm run bench`: every benchmark of the project, one table, results saved as JSON under
 * bench/results/ and bench/REPORT.md. Benchmarks are measurements, not tests: nothing here fails the build.
 * `npm run bench -- api agent` runs only the named groups.
 */
import { existsSync } from 'node:fs';
import { machine, printTable, saveResults, writeReport, type BenchRow } from './table.js';

const groups: { name: string; file: string; fn: string }[] = [
  { name: 'api', file: './api-bench.ts', fn: 'runApiBench' },
  { name: 'agent', file: './agent-bench.ts', fn: 'runAgentBench' },
  { name: 'sources', file: './sources-bench.ts', fn: 'runSourcesBench' },
  { name: 'load', file: './load-bench.ts', fn: 'runLoadBench' },
  { name: 'imaging', file: './imaging-bench.ts', fn: 'runImagingBench' },
];

const wanted = process.argv.slice(2);
const all: BenchRow[] = [];
console.log(`machine: ${machine()}`);
for (const g of groups) {
  if (wanted.length && !wanted.includes(g.name)) continue;
  if (!existsSync(new URL(g.file, import.meta.url))) continue;
  const mod = (await import(g.file)) as Record<string, () => Promise<BenchRow[]>>;
  const rows = await mod[g.fn]!();
  printTable(g.name, rows);
  all.push(...rows.map((r) => ({ ...r, name: `${g.name}: ${r.name}` })));
}
printTable('All benchmarks', all);
console.log(`results: ${saveResults('all', all)}`);
// A partial run (named groups) updates only its own rows of the report.
console.log(`report: ${writeReport(all, wanted.length ? wanted : null)}`);
process.exit(0);
