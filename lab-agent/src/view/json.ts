import type { LogRecord, View } from '../log.js';

/** One JSON object per line (`severity`, `message`, `time`, then the fields): for journald, files and log shippers. */
export function jsonView(write: (line: string) => void = (l) => process.stdout.write(l + '\n')): View {
  return {
    write(rec: LogRecord) {
      write(JSON.stringify({ severity: rec.severity, message: rec.message, time: rec.time, ...rec.fields }));
    },
  };
}
