/**
 * The agent's logger: records go to one view (readable on a terminal, JSON lines otherwise). Secrets
 * handed to `createLogger` are replaced wherever they would appear, as a last line of defence.
 */
export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
const ORDER: Record<Severity, number> = { DEBUG: 0, INFO: 1, WARNING: 2, ERROR: 3 };

export interface LogRecord {
  severity: Severity;
  message: string;
  time: string;
  fields: Record<string, unknown>;
}

export interface View {
  write(rec: LogRecord): void;
}

export interface Logger {
  log(severity: Severity, message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(o: { view: View; level?: Severity; secrets?: string[]; base?: Record<string, unknown> }): Logger {
  const level = o.level ?? 'INFO';
  const secrets = (o.secrets ?? []).filter((s) => s.length >= 4);
  const base = o.base ?? {};
  const scrub = (s: string) => secrets.reduce((acc, sec) => acc.split(sec).join('[redacted]'), s);
  return {
    log(severity, message, fields) {
      if (ORDER[severity] < ORDER[level]) return;
      let all: Record<string, unknown> = { ...base, ...fields };
      let msg = message;
      if (secrets.length) {
        msg = scrub(msg);
        const json = JSON.stringify(all);
        if (secrets.some((s) => json.includes(s))) all = JSON.parse(scrub(json)) as Record<string, unknown>;
      }
      o.view.write({ severity, message: msg, time: new Date().toISOString(), fields: all });
    },
    child(fields) {
      return createLogger({ ...o, base: { ...base, ...fields } });
    },
  };
}

export const silentLogger: Logger = { log() {}, child: () => silentLogger };
