import type { ClaimedJob, CompleteRequest, ResultFields } from '@lab-relay/protocol';
import type { SeriesSource } from '../sources/types.js';

/** What a runner is handed for one claimed job. */
export interface JobContext {
  /** The request id. */
  id: string;
  series_id: string;
  /** The four input series in the order [t1, t1c, t2, flair]. */
  series_ids: string[];
  /** Signed upload targets for outputs (e.g. `seg`, `preview`), when the API's deployment has a blob store. */
  uploads?: ClaimedJob['uploads'];
  /** A directory private to this job; removed by the agent when the job ends, however it ends. */
  workDir: string;
  /** Aborted when the job is cancelled, its lease is lost, it times out or the agent is forced to stop. */
  signal: AbortSignal;
  /** Reports progress; the agent forwards it with the next heartbeat and shows it in its view. */
  progress(stage: string, percent: number): void;
  /** Job-scoped log lines (the agent adds the job id). */
  log(severity: 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR', message: string, fields?: Record<string, unknown>): void;
}

/**
 * The result a runner produces: the completion body without the lease fence. (Spelled out rather than
 * `Omit<CompleteRequest, 'lease_token'>`: Omit over the loose object's index signature drops every
 * named field.)
 */
export type RunnerResult = ResultFields &
  Pick<CompleteRequest, 'success' | 'retryable'> & {
    /**
     * Output files by name (`seg`, `preview`) in the job's work folder. Not sent: the agent uploads them
     * to the claim's signed URLs and reports them under `outputs`.
     */
    artifacts?: Record<string, string>;
  };

export interface RunnerCheck {
  name: string;
  ok: boolean;
  /** Required checks failing make `lab-agent doctor` exit non-zero. */
  required: boolean;
  detail: string;
}

/** A way of turning a claimed job into a result: the built-in ONNX pipeline or a user's command. */
export interface Runner {
  readonly name: string;
  /** Loads what is expensive once per agent (e.g. the ONNX session) before the first claim. */
  init?(): Promise<void>;
  run(ctx: JobContext): Promise<RunnerResult>;
  /** Checks for `lab-agent doctor`. */
  check?(): Promise<RunnerCheck[]>;
  close?(): Promise<void>;
  /** Where the runner reads series from, when it does (the onnx runner); `lab-agent doctor` checks it. */
  readonly source?: SeriesSource;
}

/** What the agent hands a runner factory (runners/registry.ts): the agent's settings and the environment. */
export interface RunnerFactoryOptions {
  /** The user command (command runner). */
  command?: string | undefined;
  /** The ONNX model path (onnx runner); undefined means the runner's default. */
  model?: string | undefined;
  /** Where the onnx runner reads series from, e.g. `folder:/data/studies`. */
  source?: string | undefined;
  /** The requested onnxruntime execution provider (onnx runner). */
  provider: 'cpu' | 'cuda' | 'dml' | 'webgpu';
  /** The command line's flags (camelCase keys), for runner- and source-specific ones such as --source-url. */
  flags?: Record<string, string | undefined>;
  /** The environment after the `.env` file was applied, for runner-specific settings. */
  env: Record<string, string | undefined>;
  /** Agent-scoped logger (records carry no job id). */
  log: JobContext['log'];
}
