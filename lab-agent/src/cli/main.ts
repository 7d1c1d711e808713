#!/usr/bin/env node
/** `lab-agent` / `npm run agent --`: the process entry; see cli/program.ts for commands and exit codes. */
import { processIO, runCli } from './program.js';

const code = await runCli(process.argv.slice(2), processIO());
// Open keep-alive sockets or a lingering child must not keep a stopped agent alive.
process.exit(code);
