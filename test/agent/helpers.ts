/** Shared pieces of the agent tests: the real job API on loopback, and the agent in-process or as a child. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobView } from '@lab-relay/protocol';
import { createApi, type Api } from '../../functions/src/api.js';
import { loadConfig } from '../../functions/src/config.js';
import { nodeListener } from '../../functions/src/http/node-adapter.js';
import { silentLogger } from '../../functions/src/log.js';
import { freePort } from '../harness/firestore-emulator.js';
import type { Agent } from '../../lab-agent/src/agent.js';
import type { Flags } from '../../lab-agent/src/config.js';
import { prepareRun, runCli, type CliIO } from '../../lab-agent/src/cli/program.js';

export const AGENT_TOKEN = 'agent-token-0123456789';
export const CLIENT_TOKEN = 'client-token-0123456789';
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const FIXTURE = join(ROOT, 'test/agent/fixtures/job.mjs');

export interface TestApi {
  url: string;
  port: number;
  api: Api;
  stop(): Promise<void>;
  start(seriesId: string, seriesIds: string[], extra?: Record<string, unknown>): Promise<string>;
  status(seriesId: string): Promise<JobView>;
  cancel(id: string): Promise<void>;
}

/** The real job API (SQLite store) on 127.0.0.1; `port` 0 picks a free one. */
export async function startApi(o: { leaseSeconds?: number; sqlitePath?: string; port?: number; blobDir?: string } = {}): Promise<TestApi> {
  // The port is known before the API is built, so signed output URLs (PUBLIC_URL) point at it.
  const listenPort = o.port ?? (await freePort());
  const blobDir = o.blobDir ?? join(tmpdir(), `lab-agent-test-blobs-${listenPort}`);
  const cfg = loadConfig({
    PORT: String(listenPort),
    PUBLIC_URL: `http://127.0.0.1:${listenPort}`,
    BLOB_DIR: blobDir,
    BLOB_SIGNING_SECRET: 'agent-test-blob-secret-0123456789abcdef',
    SQLITE_PATH: o.sqlitePath ?? ':memory:',
    INFERENCE_AGENT_TOKENS: AGENT_TOKEN,
    INFERENCE_CLIENT_TOKENS: CLIENT_TOKEN,
    LEASE_SECONDS: String(o.leaseSeconds ?? 4),
    RETRY_BASE_SECONDS: '30',
  });
  const api = createApi(cfg, { log: silentLogger });
  const server: Server = createServer(nodeListener(api.handle, api.bodyLimit));
  await new Promise<void>((r) => server.listen(listenPort, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const url = `http://127.0.0.1:${port}`;
  const client = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}/api/${path}`, {
      method,
      headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    url,
    port,
    api,
    async stop() {
      await api.service.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await api.close();
      if (!o.blobDir) rmSync(blobDir, { recursive: true, force: true });
    },
    async start(seriesId, seriesIds, extra = {}) {
      const r = await client('POST', `inference/${seriesId}/start`, { series_ids: seriesIds, ...extra });
      return r.request_id as string;
    },
    async status(seriesId) {
      return (await client('GET', `inference/${seriesId}/status`)) as unknown as JobView;
    },
    async cancel(id) {
      await client('POST', `inference/${id}/cancel`);
    },
  };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `lab-agent-test-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export type LogLine = Record<string, unknown> & { severity: string; message: string; time: string; job_id?: string; event?: string };

/** A CliIO that keeps what the agent prints, parsed when it is JSON. */
export function captureIO(env: Record<string, string | undefined> = {}, cwd: string = ROOT): CliIO & { lines: LogLine[]; out: string[]; err: string[] } {
  const lines: LogLine[] = [];
  const out: string[] = [];
  const err: string[] = [];
  return {
    env: { PATH: process.env.PATH, ...env },
    cwd,
    isTTY: false,
    lines,
    out,
    err,
    stdout(t) {
      out.push(t);
      for (const l of t.split('\n').filter(Boolean)) {
        try {
          lines.push(JSON.parse(l) as LogLine);
        } catch {
          // A table or help text, not a log line.
        }
      }
    },
    stderr(t) {
      err.push(t);
    },
  };
}

export interface InProcessAgent {
  agent: Agent;
  done: Promise<number>;
  lines: LogLine[];
  stop(): Promise<number>;
}

/** The agent in this process, as `lab-agent run` builds it, with JSON logs captured. */
export async function startAgent(flags: Flags, env: Record<string, string | undefined> = {}): Promise<InProcessAgent> {
  const io = captureIO(env);
  const { agent } = await prepareRun({ token: AGENT_TOKEN, logFormat: 'json', ...flags }, io);
  const done = agent.run();
  return {
    agent,
    done,
    lines: io.lines,
    async stop() {
      agent.stop();
      return done;
    },
  };
}

export { runCli };

/**
 * Waits until `count` lines match, then a moment more, and returns the matches: the API's status turns
 * `completed` a moment before the agent logs the acknowledgement, and "exactly once" needs a settle.
 */
export async function linesEventually(lines: LogLine[], pred: (l: LogLine) => boolean, count: number, timeoutMs = 10_000): Promise<LogLine[]> {
  await waitFor(`${count} matching log line(s)`, () => lines.filter(pred).length >= count, timeoutMs, 50);
  await new Promise((r) => setTimeout(r, 300));
  return lines.filter(pred);
}

/** Waits until `fn` returns a truthy value, polling; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 15_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `lab-agent` as its own process (node + tsx, one process, so a signal reaches the agent itself). */
export function spawnAgent(args: string[], env: Record<string, string> = {}): ChildProcess & { lines: LogLine[]; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'lab-agent/src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { lines: LogLine[]; output: () => string };
  const lines: LogLine[] = [];
  let text = '';
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    text += c;
    const parts = (partial + c).split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) {
      try {
        lines.push(JSON.parse(l) as LogLine);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (text += c));
  child.lines = lines;
  child.output = () => text;
  track(child);
  return child;
}

const closed = new WeakMap<ChildProcess, { code: number | null; signal: NodeJS.Signals | null }>();

/** Resolves once the process has exited and its output streams are drained ('close', not 'exit'). */
export function exited(child: ChildProcess, timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolveExit, reject) => {
    const known = closed.get(child);
    if (known) return resolveExit(known);
    const t = setTimeout(() => reject(new Error(`process ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(t);
      resolveExit({ code, signal });
    });
  });
}

/** Remembers how a child ended, so `exited` also answers after the fact. */
export function track(child: ChildProcess): void {
  child.once('close', (code, signal) => closed.set(child, { code, signal }));
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
