/**
 * The `command` runner: the lab's own program (for example an existing Python inference script) does
 * the work. Per job it is started through the shell in the job's work folder, gets the job as one JSON
 * object on stdin ({id, series_id, series_ids, work_dir}), and prints the result as one JSON object on
 * stdout. Its stderr goes to the agent's log line by line; a line `progress STAGE PERCENT` reports
 * progress. Exit 0 with a valid result -> that result; anything else -> a failed result saying why.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { CompleteRequest } from '@lab-relay/protocol';
import { RunnerFailure } from '../errors.js';
import type { JobContext, Runner, RunnerCheck, RunnerResult } from './types.js';

/** The result of a program that prints more than this is not a result. */
const MAX_STDOUT_BYTES = 4 * 1024 * 1024;
/** After an abort, how long the program gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 5000;
const STDERR_TAIL_LINES = 10;
/** sysexits' EX_TEMPFAIL: a program can say "try again later" by exiting with it. */
export const EXIT_TEMPFAIL = 75;
/** 128 + SIGABRT/SIGBUS/SIGKILL/SIGSEGV: how `sh -c` reports its program crashing. */
const SHELL_SIGNAL_EXITS: Record<number, string> = { 134: 'SIGABRT', 135: 'SIGBUS', 137: 'SIGKILL', 139: 'SIGSEGV' };

const StdoutResult = CompleteRequest.omit({ lease_token: true }).extend({ success: CompleteRequest.shape.success.default(true) });

export class CommandRunner implements Runner {
  readonly name = 'command';

  constructor(
    readonly command: string,
    private readonly o: { killGraceMs?: number; env?: Record<string, string | undefined> } = {},
  ) {}

  async check(): Promise<RunnerCheck[]> {
    const prog = firstWord(this.command);
    const found = prog ? findExecutable(prog, this.o.env ?? process.env) : null;
    return [
      {
        name: 'runner: command',
        ok: found !== null,
        required: true,
        detail: found ? `${this.command} (${prog} -> ${found})` : `'${prog ?? this.command}' was not found${prog && !/[\\/]/.test(prog) ? ' on PATH' : ''}`,
      },
    ];
  }

  run(ctx: JobContext): Promise<RunnerResult> {
    return new Promise<RunnerResult>((resolvePromise, reject) => {
      if (ctx.signal.aborted) return reject(ctx.signal.reason);
      const child = spawn(this.command, {
        shell: true,
        cwd: ctx.workDir,
        env: { ...withoutSecrets({ ...process.env, ...this.o.env }), LAB_AGENT_JOB_ID: ctx.id, LAB_AGENT_WORK_DIR: ctx.workDir },
        stdio: ['pipe', 'pipe', 'pipe'],
        // Its own process group on POSIX, so an abort reaches the shell's children too.
        detached: process.platform !== 'win32',
        windowsHide: true,
      });
      ctx.log('DEBUG', `started: ${this.command}`, { pid: child.pid });
      const out: Buffer[] = [];
      let outBytes = 0;
      let tooBig = false;
      const tail: string[] = [];
      let partial = '';
      let killTimer: NodeJS.Timeout | undefined;

      const onAbort = () => {
        killTree(child, 'SIGTERM');
        killTimer = setTimeout(() => killTree(child, 'SIGKILL'), this.o.killGraceMs ?? KILL_GRACE_MS);
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });

      const stderrLine = (line: string) => {
        const p = /^progress[:\s]\s*(\S+)\s+(\d+(?:\.\d+)?)%?\s*$/i.exec(line);
        if (p) return ctx.progress(p[1]!, Number(p[2]));
        if (!line.trim()) return;
        tail.push(line);
        if (tail.length > STDERR_TAIL_LINES) tail.shift();
        ctx.log('INFO', line, { stream: 'stderr' });
      };
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        const lines = (partial + chunk).split(/\r?\n/);
        partial = lines.pop() ?? '';
        lines.forEach(stderrLine);
      });
      child.stdout.on('data', (chunk: Buffer) => {
        outBytes += chunk.length;
        if (outBytes > MAX_STDOUT_BYTES) {
          if (!tooBig) killTree(child, 'SIGKILL');
          tooBig = true;
          return;
        }
        out.push(chunk);
      });
      // A program that never reads stdin closes it early: that is its right, not an error.
      child.stdin.on('error', () => undefined);
      child.stdin.end(JSON.stringify({ id: ctx.id, series_id: ctx.series_id, series_ids: ctx.series_ids, work_dir: ctx.workDir }) + '\n');

      let spawnError: Error | undefined;
      child.on('error', (err) => {
        spawnError = err;
      });
      child.on('close', (code, signal) => {
        if (partial) stderrLine(partial);
        clearTimeout(killTimer);
        ctx.signal.removeEventListener('abort', onAbort);
        if (ctx.signal.aborted) return reject(ctx.signal.reason);
        const why = tail.length ? `; last stderr: ${tail.slice(-3).join(' | ').slice(0, 600)}` : '';
        if (spawnError) return reject(new RunnerFailure(`could not start the command '${this.command}': ${spawnError.message}`, false));
        if (tooBig) return reject(new RunnerFailure(`the command printed more than ${MAX_STDOUT_BYTES} bytes on stdout; expected one JSON result object`, false));
        if (signal) {
          return reject(new RunnerFailure(`the command was killed by ${signal} (a crash or out of memory)${why}`, true));
        }
        // A shell that did not exec its program reports a signal death as 128 + the signal number.
        const shellSignal = code !== null && SHELL_SIGNAL_EXITS[code];
        if (shellSignal) {
          return reject(new RunnerFailure(`the command exited with code ${code} (killed by ${shellSignal}: a crash or out of memory)${why}`, true));
        }
        if (code !== 0) {
          const hint = code === 127 ? ' (command not found)' : code === 126 ? ' (not executable)' : '';
          return reject(new RunnerFailure(`the command exited with code ${code}${hint}${why}`, code === EXIT_TEMPFAIL));
        }
        try {
          resolvePromise(parseResult(Buffer.concat(out).toString('utf8')));
        } catch (err) {
          reject(err);
        }
      });
    });
  }
}

/** The whole stdout as one JSON object, or else its last non-empty line (programs print chatter). */
export function parseResult(stdout: string): RunnerResult {
  const text = stdout.trim();
  if (!text) throw new RunnerFailure('the command exited 0 but printed nothing on stdout; expected one JSON result object', false);
  const lines = text.split(/\r?\n/).filter((l) => l.trim());
  const candidates = [text, lines[lines.length - 1]!];
  let lastProblem = '';
  for (const c of candidates) {
    let json: unknown;
    try {
      json = JSON.parse(c);
    } catch {
      lastProblem = 'it is not JSON';
      continue;
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) {
      lastProblem = 'it is not a JSON object';
      continue;
    }
    const r = StdoutResult.safeParse(json);
    if (!r.success) {
      const i = r.error.issues[0]!;
      throw new RunnerFailure(`the command printed a JSON object that is not a valid result: ${i.path.join('.') || '(result)'}: ${i.message}`, false);
    }
    return r.data as RunnerResult;
  }
  const snippet = text.length > 200 ? text.slice(0, 200) + '...' : text;
  throw new RunnerFailure(`the command's output is not a valid result (${lastProblem}): ${JSON.stringify(snippet)}`, false);
}

function killTree(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    if (process.platform === 'win32') {
      spawn('taskkill', ['/pid', String(child.pid), '/T', '/F'], { windowsHide: true, stdio: 'ignore' }).on('error', () => undefined);
    } else {
      process.kill(-child.pid, sig);
    }
  } catch {
    child.kill(sig);
  }
}

/** The program a shell command line starts (first word, quotes removed). */
export function firstWord(cmd: string): string | undefined {
  const m = /^\s*(?:"([^"]+)"|'([^']+)'|(\S+))/.exec(cmd);
  return m ? (m[1] ?? m[2] ?? m[3]) : undefined;
}

/**
 * The agent's own credentials are not the lab program's business: the API token and the image
 * source / PACS passwords are removed from the environment it inherits.
 */
const AGENT_SECRETS = ['INFERENCE_AGENT_TOKEN', 'INFERENCE_AGENT_TOKENS', 'AGENT_SOURCE_PASSWORD', 'AGENT_SOURCE_TOKEN', 'ORTHANC_PASSWORD', 'AGENT_PACS_PASSWORD', 'AGENT_PACS_TOKEN'];

export function withoutSecrets(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out = { ...env };
  for (const k of AGENT_SECRETS) delete out[k];
  return out;
}

export function findExecutable(prog: string, env: Record<string, string | undefined>): string | null {
  const exts = process.platform === 'win32' ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';')] : [''];
  const isFile = (p: string) => {
    try {
      if (!statSync(p).isFile()) return false;
      if (process.platform !== 'win32') accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (/[\\/]/.test(prog)) {
    const p = isAbsolute(prog) ? prog : resolve(prog);
    return exts.map((e) => p + e).find(isFile) ?? null;
  }
  for (const dir of (env.PATH ?? env.Path ?? '').split(delimiter).filter(Boolean)) {
    for (const e of exts) if (isFile(join(dir, prog + e))) return join(dir, prog + e);
  }
  return null;
}
