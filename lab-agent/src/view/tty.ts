import type { LogRecord, Severity, View } from '../log.js';

const COLOR: Record<Severity, string> = { DEBUG: '\x1b[90m', INFO: '\x1b[36m', WARNING: '\x1b[33m', ERROR: '\x1b[31m' };
const RESET = '\x1b[0m';
const BAR = 20;

/**
 * A readable view for a person at the lab PC: a time, the job (short id), the message, and for progress
 * records a bar per job, e.g. `12:00:03 job 0f3a2c1d  [########------------]  40%  infer`.
 */
export function ttyView(write: (line: string) => void = (l) => process.stdout.write(l + '\n'), color = true): View {
  const paint = (sev: Severity, s: string) => (color ? COLOR[sev] + s + RESET : s);
  return {
    write(rec: LogRecord) {
      const { job_id, event, stage, percent, ...rest } = rec.fields;
      const time = rec.time.slice(11, 19);
      const job = typeof job_id === 'string' ? `job ${job_id.slice(-8)} ` : '';
      if (event === 'progress' && typeof percent === 'number') {
        const filled = Math.round((Math.max(0, Math.min(100, percent)) / 100) * BAR);
        const bar = '#'.repeat(filled) + '-'.repeat(BAR - filled);
        write(`${time} ${job}[${bar}] ${String(Math.round(percent)).padStart(3)}%  ${String(stage ?? '')}`);
        return;
      }
      if (rest.stream === 'stderr') {
        // The program's own output, quoted as it came.
        write(`${time} ${job}${paint('DEBUG', '> ')}${rec.message}`);
        return;
      }
      const extras = Object.entries(rest)
        .filter(([k, v]) => v !== undefined && k !== 'agent_id')
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      const sev = rec.severity === 'INFO' ? '' : paint(rec.severity, rec.severity + ' ');
      write(`${time} ${sev}${job}${rec.message}${extras ? '  ' + paint('DEBUG', extras) : ''}`);
    },
  };
}
