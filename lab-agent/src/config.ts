/**
 * Agent configuration: a flag, else the environment (a `.env` file fills in what the real environment
 * lacks), else a default; then one zod check, so a bad value stops the agent at start-up with a message
 * naming the setting instead of failing at the first job.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir, hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AgentId, MAX_WAIT_SECONDS } from '@lab-relay/protocol';
import { parse as parseDotenv } from 'dotenv';
import { z } from 'zod';
import { ConfigError } from './errors.js';

export const RUNNERS = ['onnx', 'command'] as const;
export const PROVIDERS = ['cpu', 'cuda', 'dml', 'webgpu'] as const;
export const LOG_FORMATS = ['auto', 'pretty', 'json'] as const;
export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR'] as const;

/** One setting: its flag, its environment variable(s) (first wins), its default and its meaning. */
export interface SettingSpec {
  key: keyof RawSettings;
  flag: string;
  env: string[];
  default: string;
  help: string;
}

type RawSettings = {
  apiUrl: string;
  token: string;
  agentId: string;
  runner: string;
  command: string;
  model: string;
  provider: string;
  source: string;
  slots: string;
  outbox: string;
  workDir: string;
  jobTimeout: string;
  pollWait: string;
  gracePeriod: string;
  maxBackoff: string;
  logFormat: string;
  logLevel: string;
};

/** The table the CLI's help, the README and the resolver are all written from. */
export const SETTINGS: SettingSpec[] = [
  { key: 'apiUrl', flag: '--api-url <url>', env: ['INFERENCE_API_URL', 'GCP_API_URL'], default: '(required)', help: 'job API base URL, e.g. https://REGION-PROJECT.cloudfunctions.net/api (with or without /api)' },
  { key: 'token', flag: '--token <token>', env: ['INFERENCE_AGENT_TOKEN'], default: '(required)', help: 'agent bearer token (one of the API\'s INFERENCE_AGENT_TOKENS); never logged' },
  { key: 'agentId', flag: '--agent-id <id>', env: ['AGENT_ID'], default: 'the host name', help: 'name shown in the API\'s metrics and dashboard' },
  { key: 'runner', flag: '--runner <name>', env: ['AGENT_RUNNER'], default: 'command when a command is set, else onnx', help: 'onnx (built-in segmentation pipeline) or command (your own program)' },
  { key: 'command', flag: '--command <cmdline>', env: ['AGENT_COMMAND'], default: '(none)', help: 'command line the command runner starts per job (through the shell)' },
  { key: 'model', flag: '--model <path>', env: ['AGENT_MODEL'], default: 'the bundled demo model', help: 'ONNX model for the onnx runner (manifest beside it)' },
  { key: 'source', flag: '--source <spec>', env: ['AGENT_SOURCE'], default: 'orthanc (at --source-url)', help: 'where the onnx runner reads series: orthanc, dicomweb or folder, optionally with its location (orthanc:http://pacs:8042, dicomweb:https://host/dicom-web, folder:/data/studies)' },
  { key: 'provider', flag: '--provider <ep>', env: ['AGENT_PROVIDER'], default: 'cpu', help: 'onnxruntime execution provider for the onnx runner: cpu, cuda, dml, webgpu' },
  { key: 'slots', flag: '--slots <n>', env: ['AGENT_SLOTS'], default: '1', help: 'jobs run at the same time (1 = one GPU)' },
  { key: 'outbox', flag: '--outbox <dir>', env: ['AGENT_OUTBOX'], default: '~/.lab-agent/outbox', help: 'results waiting for the API\'s acknowledgement' },
  { key: 'workDir', flag: '--work-dir <dir>', env: ['AGENT_WORK_DIR'], default: '<tmp>/lab-agent', help: 'parent of the per-job temporary folders' },
  { key: 'jobTimeout', flag: '--job-timeout <s>', env: ['AGENT_JOB_TIMEOUT'], default: '3600', help: 'seconds a job may run before it is stopped and reported as a retryable failure (0 = no limit)' },
  { key: 'pollWait', flag: '--poll-wait <s>', env: ['AGENT_POLL_WAIT', 'POLL_INTERVAL'], default: String(MAX_WAIT_SECONDS), help: `seconds one long-poll waits on the server (1-${MAX_WAIT_SECONDS}); the seed's POLL_INTERVAL is read as this, capped at ${MAX_WAIT_SECONDS}` },
  { key: 'gracePeriod', flag: '--grace-period <s>', env: ['AGENT_GRACE_PERIOD'], default: '60', help: 'on the first SIGINT/SIGTERM, seconds running jobs get to finish before they are stopped' },
  { key: 'maxBackoff', flag: '--max-backoff <s>', env: ['AGENT_MAX_BACKOFF'], default: '60', help: 'longest wait between retries when the API is unreachable' },
  { key: 'logFormat', flag: '--log-format <fmt>', env: ['AGENT_LOG_FORMAT'], default: 'auto', help: 'auto (readable on a terminal, JSON lines otherwise), pretty or json' },
  { key: 'logLevel', flag: '--log-level <level>', env: ['AGENT_LOG_LEVEL'], default: 'INFO', help: 'DEBUG, INFO, WARNING or ERROR' },
];

const seconds = (name: string, min: number, max: number) =>
  z.coerce
    .number({ error: `${name} must be a number of seconds` })
    .refine((n) => Number.isFinite(n), `${name} must be a number of seconds`)
    .pipe(z.number().min(min, `${name} must be at least ${min}`).max(max, `${name} must be at most ${max}`));

const Schema = z
  .object({
    apiUrl: z
      .string({ error: 'is required (--api-url or INFERENCE_API_URL)' })
      .url('must be an http(s) URL')
      .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL'),
    token: z
      .string({ error: 'is required (--token or INFERENCE_AGENT_TOKEN)' })
      .min(16, 'must be at least 16 characters')
      .refine((t) => !/\s/.test(t), 'must not contain spaces'),
    agentId: AgentId,
    runner: z.enum(RUNNERS, { error: `must be one of ${RUNNERS.join(', ')}` }),
    command: z.string().optional(),
    model: z.string().optional(),
    source: z.string().optional(),
    provider: z.enum(PROVIDERS, { error: `must be one of ${PROVIDERS.join(', ')}` }),
    slots: z.coerce.number({ error: 'must be a whole number' }).int('must be a whole number').min(1, 'must be at least 1').max(32, 'must be at most 32'),
    outbox: z.string().min(1),
    workDir: z.string().min(1),
    jobTimeout: seconds('job timeout', 0, 7 * 24 * 3600),
    pollWait: seconds('poll wait', 1, MAX_WAIT_SECONDS),
    gracePeriod: seconds('grace period', 0, 24 * 3600),
    maxBackoff: seconds('max backoff', 1, 3600),
    logFormat: z.enum(LOG_FORMATS, { error: `must be one of ${LOG_FORMATS.join(', ')}` }),
    logLevel: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }),
  });

export type AgentConfig = z.infer<typeof Schema>;

/** Flags as commander hands them over (camelCase keys, string values). */
export type Flags = Partial<Record<keyof RawSettings, string | undefined>> & { envFile?: string | undefined };

export interface ResolveOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** Reads the `.env` file (explicit path must exist; the default one is optional). */
export function readEnvFile(flags: Flags, cwd: string): Record<string, string> {
  const path = flags.envFile ? resolve(cwd, flags.envFile) : join(cwd, '.env');
  if (!existsSync(path)) {
    if (flags.envFile) throw new ConfigError(`Invalid agent configuration:\n  --env-file: ${path} does not exist`);
    return {};
  }
  try {
    return parseDotenv(readFileSync(path));
  } catch (err) {
    throw new ConfigError(`Invalid agent configuration:\n  --env-file: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** Where each setting came from, for the start-up log (never the token's value). */
export type Sources = Partial<Record<keyof RawSettings, string>>;

export function resolveConfig(flags: Flags, o: ResolveOptions = {}): { config: AgentConfig; sources: Sources } {
  const cwd = o.cwd ?? process.cwd();
  const real = o.env ?? process.env;
  // The real environment wins over the file, as dotenv does by default.
  const env: Record<string, string | undefined> = { ...readEnvFile(flags, cwd), ...stripEmpty(real) };
  const raw: Partial<RawSettings> = {};
  const sources: Sources = {};
  for (const s of SETTINGS) {
    const fromFlag = flags[s.key];
    if (fromFlag !== undefined && fromFlag !== '') {
      raw[s.key] = fromFlag;
      sources[s.key] = s.flag.split(' ')[0]!;
      continue;
    }
    for (const name of s.env) {
      const v = env[name];
      if (v !== undefined && v.trim() !== '') {
        raw[s.key] = v.trim();
        sources[s.key] = name;
        break;
      }
    }
  }
  // The seed's POLL_INTERVAL (default 30 s) meant "sleep between polls"; as a long-poll wait it is capped.
  if (sources.pollWait === 'POLL_INTERVAL' && Number(raw.pollWait) > MAX_WAIT_SECONDS) raw.pollWait = String(MAX_WAIT_SECONDS);

  const defaults: RawSettings = {
    apiUrl: undefined as unknown as string,
    token: undefined as unknown as string,
    agentId: defaultAgentId(),
    runner: raw.command ? 'command' : 'onnx',
    command: undefined as unknown as string,
    model: undefined as unknown as string,
    source: undefined as unknown as string,
    provider: 'cpu',
    slots: '1',
    outbox: join(homedir(), '.lab-agent', 'outbox'),
    workDir: join(tmpdir(), 'lab-agent'),
    jobTimeout: '3600',
    pollWait: String(MAX_WAIT_SECONDS),
    gracePeriod: '60',
    maxBackoff: '60',
    logFormat: 'auto',
    logLevel: 'INFO',
  };
  const merged = { ...defaults, ...raw };
  if (merged.logLevel) merged.logLevel = merged.logLevel.toUpperCase();
  const r = Schema.safeParse(merged);
  // Cross-field rules are checked beside the schema so that every problem is reported in one go.
  const extra: Array<{ path: string[]; message: string }> = [];
  if (merged.runner === 'command' && !merged.command?.trim()) extra.push({ path: ['command'], message: 'the command runner needs a command (--command or AGENT_COMMAND)' });
  if (!r.success || extra.length) {
    const lines = [...(r.success ? [] : r.error.issues), ...extra].map((i) => {
      const key = String(i.path[0] ?? '');
      const spec = SETTINGS.find((s) => s.key === key);
      const name = spec ? `${spec.flag.split(' ')[0]} / ${spec.env.join(' / ')}` : key || '(config)';
      return `  ${name}: ${i.message}`;
    });
    throw new ConfigError(`Invalid agent configuration:\n${[...new Set(lines)].join('\n')}`);
  }
  const config = r.data!;
  config.outbox = resolve(cwd, config.outbox);
  config.workDir = resolve(cwd, config.workDir);
  if (config.model) config.model = resolve(cwd, config.model);
  return { config, sources };
}

function stripEmpty(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

/** The host name, reduced to the characters an agent id may hold. */
export function defaultAgentId(): string {
  const h = hostname().replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 64);
  return h || 'lab-agent';
}
