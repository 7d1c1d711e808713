/**
 * Structured JSON logs, one object per line with `severity` and `message`, which Cloud Logging
 * parses as-is. Callers pass ids and counts, never tokens or patient attributes.
 */
export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
const ORDER: Record<Severity, number> = { DEBUG: 0, INFO: 1, WARNING: 2, ERROR: 3 };

export interface Logger {
  log(severity: Severity, message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(
  opts: { level?: Severity; write?: (line: string) => void; base?: Record<string, unknown> } = {},
): Logger {
  const level = opts.level ?? 'INFO';
  const write = opts.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const base = opts.base ?? {};
  return {
    log(severity, message, fields) {
      if (ORDER[severity] < ORDER[level]) return;
      write(JSON.stringify({ severity, message, time: new Date().toISOString(), ...base, ...fields }));
    },
    child(fields) {
      return createLogger({ level, write, base: { ...base, ...fields } });
    },
  };
}

export const silentLogger: Logger = { log() {}, child: () => silentLogger };
