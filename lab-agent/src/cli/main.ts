#!/usr/bin/env node
/** `lab-agent` / `npm run agent --`: the process entry; see cli/program.ts for commands and exit codes. */
import { processIO, runCli, runSegment } from './program.js';

const argv = process.argv.slice(2);
if (argv[0] === 'segment' && (await runSegment(argv.slice(1)))) {
  // The pipeline script ends by itself and sets process.exitCode; exiting here would cut it short.
} else {
  const code = await runCli(argv, processIO());
  // Open keep-alive sockets or a lingering child must not keep a stopped agent alive.
  process.exit(code);
}
