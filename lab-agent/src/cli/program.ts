/**
 * The `lab-agent` command line as a function from arguments to an exit code, so tests can drive it
 * in-process; cli/main.ts is the process entry around it.
 *
 * Exit codes: 0 ok; 1 doctor found a required check failing, or an unexpected error; 2 invalid
 * configuration or usage; 3 the API refused the agent token; 130 a second Ctrl+C/SIGTERM.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { Agent } from '../agent.js';
import { ApiClient } from '../api-client.js';
import { SETTINGS, resolveConfig, readEnvFile, type AgentConfig, type Flags } from '../config.js';
import { doctorExitCode, formatTable, runDoctor } from '../doctor.js';
import { ConfigError, errorMessage } from '../errors.js';
import { PACS_SETTINGS } from '../sinks/pacs-config.js';
import { SOURCE_SETTINGS } from '../sources/config.js';
import { createLogger, type Logger } from '../log.js';
import { probeProviders } from '../ort-probe.js';
import { Outbox } from '../outbox.js';
import { createRunner } from '../runners/registry.js';
import type { Runner } from '../runners/types.js';
import { jsonView } from '../view/json.js';
import { ttyView } from '../view/tty.js';

export const EXIT_USAGE = 2;

export interface CliIO {
  env: Record<string, string | undefined>;
  cwd: string;
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stdout is a terminal (picks the readable view under --log-format auto). */
  isTTY: boolean;
  /** Installs signal handlers for `run`; returns their removal. Absent in tests that stop the agent themselves. */
  onSignals?(handler: (signal: string) => void): () => void;
  /** Exits the process at once (a second signal). */
  exitNow?(code: number): never;
}

export function processIO(): CliIO {
  return {
    env: process.env,
    cwd: process.cwd(),
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    isTTY: Boolean(process.stdout.isTTY),
    onSignals(handler) {
      const sigs: NodeJS.Signals[] = process.platform === 'win32' ? ['SIGINT', 'SIGTERM', 'SIGBREAK'] : ['SIGINT', 'SIGTERM'];
      const fns = sigs.map((s) => {
        const fn = () => handler(s);
        process.on(s, fn);
        return [s, fn] as const;
      });
      return () => fns.forEach(([s, fn]) => process.off(s, fn));
    },
    exitNow: (code) => process.exit(code),
  };
}

/** Builds the logger for the configured output: readable on a terminal, JSON lines otherwise. */
export function createAgentLogger(cfg: Pick<AgentConfig, 'logFormat' | 'logLevel' | 'token' | 'agentId'>, io: Pick<CliIO, 'stdout' | 'isTTY'>, moreSecrets: string[] = []): Logger {
  const pretty = cfg.logFormat === 'pretty' || (cfg.logFormat === 'auto' && io.isTTY);
  const write = (line: string) => io.stdout(line + '\n');
  return createLogger({ view: pretty ? ttyView(write, io.isTTY) : jsonView(write), level: cfg.logLevel, secrets: [cfg.token, ...moreSecrets], base: pretty ? {} : { agent_id: cfg.agentId } });
}

/** Everything `run` needs, created and validated; `agent.run()` starts it. */
export async function prepareRun(flags: Flags, io: CliIO): Promise<{ agent: Agent; config: AgentConfig; log: Logger; runner: Runner }> {
  const { config, sources } = resolveConfig(flags, { env: io.env, cwd: io.cwd });
  const env = { ...readEnvFile(flags, io.cwd), ...io.env };
  const log = createAgentLogger(config, io, secretValues(flags, env));
  const runner = await createRunner(config.runner, { command: config.command, model: config.model, source: config.source, provider: config.provider, flags: flags as Record<string, string | undefined>, env, log: (s, m, f) => log.log(s, m, f) });
  const client = new ApiClient({ apiUrl: config.apiUrl, token: config.token, agentId: config.agentId });
  log.log('INFO', `lab-agent starting: API ${config.apiUrl}, runner ${runner.name}, ${config.slots} slot(s), outbox ${config.outbox}`, {
    event: 'starting',
    runner: runner.name,
    slots: config.slots,
    outbox: config.outbox,
    work_dir: config.workDir,
    poll_wait_s: config.pollWait,
    api_url_from: sources.apiUrl,
  });
  const agent = new Agent({
    client,
    runner,
    outbox: new Outbox(config.outbox),
    log,
    agentId: config.agentId,
    slots: config.slots,
    pollWaitS: config.pollWait,
    workRoot: config.workDir,
    jobTimeoutMs: config.jobTimeout * 1000,
    graceMs: config.gracePeriod * 1000,
    maxBackoffMs: config.maxBackoff * 1000,
  });
  return { agent, config, log, runner };
}

/** The image source's and PACS sink's own settings (sources/config.ts, sinks/pacs-config.ts); `--source` itself is the agent's. */
const EXTRA_SETTINGS = [...SOURCE_SETTINGS.filter((s) => s.key !== 'kind'), ...PACS_SETTINGS];

/** Values of settings marked secret (passwords, tokens), so the logger can redact them wherever they appear. */
function secretValues(flags: Flags, env: Record<string, string | undefined>): string[] {
  const out: string[] = [];
  for (const s of EXTRA_SETTINGS) {
    if (!s.secret) continue;
    const key = s.flag.split(' ')[0]!.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const v = (flags as Record<string, string | undefined>)[key] ?? s.env.map((e) => env[e]).find(Boolean);
    if (v) out.push(v);
  }
  return out;
}

function addSettings(cmd: Command): Command {
  for (const s of [...SETTINGS, ...EXTRA_SETTINGS]) {
    cmd.addOption(new Option(s.flag, `${s.help} [env: ${s.env.join(', ')}; default: ${s.default || '(none)'}]`));
  }
  return cmd.option('--env-file <path>', 'read settings from this file instead of ./.env (the real environment wins)');
}

export async function runCli(argv: string[], io: CliIO = processIO()): Promise<number> {
  let code: number | undefined;
  const program = new Command('lab-agent')
    .description('The lab PC agent of lab-relay: claims brain-MRI segmentation jobs from the job API over outbound HTTPS, runs them, and delivers every result exactly once.')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run with --help for usage)');

  addSettings(
    program
      .command('run')
      .description('Claim and run jobs until stopped (Ctrl+C / SIGTERM once: finish running jobs within the grace period; twice: exit now)')
      .exitOverride(),
  ).action(async (flags: Flags) => {
    const { agent, log, config } = await prepareRun(flags, io);
    let signals = 0;
    const off = io.onSignals?.((sig) => {
      signals++;
      if (signals === 1) {
        log.log('WARNING', `${sig}: claiming no more jobs; running jobs get up to ${config.gracePeriod} s to finish (send ${sig} again to exit now)`, { event: 'stopping' });
        agent.stop();
      } else {
        log.log('ERROR', `${sig} again: exiting now; the running jobs' leases will expire and the API will hand them out again`, { event: 'forced-exit' });
        io.exitNow?.(130);
      }
    });
    try {
      code = await agent.run();
    } finally {
      off?.();
    }
  });

  program
    .command('doctor')
    .description('Check the API, the token, the runner, onnxruntime execution providers and the image source; prints a table')
    .exitOverride()
    .option('--json', 'print the checks as JSON instead of a table');
  addSettings(program.commands.find((c) => c.name() === 'doctor')!).action(async (flags: Flags & { json?: boolean }) => {
    const { config } = resolveConfig(flags, { env: io.env, cwd: io.cwd });
    const env = { ...readEnvFile(flags, io.cwd), ...io.env };
    const quiet = () => undefined;
    const runner = await createRunner(config.runner, { command: config.command, model: config.model, source: config.source, provider: config.provider, flags: flags as Record<string, string | undefined>, env, log: quiet }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    const client = new ApiClient({ apiUrl: config.apiUrl, token: config.token, agentId: config.agentId, requestTimeoutMs: 10_000 });
    const rows = await runDoctor(config, { client, runner, probeProviders: () => probeProviders() });
    if (!(runner instanceof Error)) await runner.close?.();
    io.stdout((flags.json ? JSON.stringify(rows, null, 2) : formatTable(rows)) + '\n');
    code = doctorExitCode(rows);
  });

  await registerSegment(program, io);

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help asked for exits 0; help shown because no command was given is a usage error.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return err.exitCode === 0 ? 0 : EXIT_USAGE;
      // Commander already printed the message.
      return err.code === 'commander.executeSubCommandAsync' ? 1 : EXIT_USAGE;
    }
    if (err instanceof ConfigError) {
      io.stderr(err.message + '\n');
      return EXIT_USAGE;
    }
    io.stderr(`lab-agent: ${errorMessage(err)}\n`);
    return 1;
  }
  return code ?? (typeof process.exitCode === 'number' ? process.exitCode : 0);
}

/**
 * `lab-agent segment` belongs to the imaging pipeline (cli/segment.ts, its own issue), a script that
 * parses `process.argv` when imported. It is listed here when the file exists and run by `runSegment`
 * (cli/main.ts hands `segment ...` straight to it, so the pipeline is never cut short by an exit).
 */
export function segmentModule(): string | null {
  for (const f of ['./segment.ts', './segment.js']) {
    const p = fileURLToPath(new URL(f, import.meta.url));
    if (existsSync(p)) return p;
  }
  return null;
}

/** Runs cli/segment.ts with `args` as its command line; false when this build has no segment command. */
export async function runSegment(args: string[]): Promise<boolean> {
  const path = segmentModule();
  if (!path) return false;
  // The script reads its options from process.argv (from argv[2] on) when it is imported.
  process.argv = [process.argv[0]!, path, ...args];
  await import(pathToFileURL(path).href);
  return true;
}

async function registerSegment(program: Command, io: CliIO): Promise<void> {
  if (!segmentModule()) return;
  program
    .command('segment')
    .description('Segment a local four-series study with no API (see `lab-agent segment --help`)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (_opts: unknown, cmd: Command) => {
      if (!(await runSegment(cmd.args))) io.stderr('lab-agent: this build has no segment command\n');
    });
}
