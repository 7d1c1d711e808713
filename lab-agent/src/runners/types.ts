import type { CompleteRequest } from '@lab-relay/protocol';

/** What a runner is handed for one claimed job. */
export interface JobContext {
  /** The request id. */
  id: string;
  series_id: string;
  /** The four input series in the order [t1, t1c, t2, flair]. */
  series_ids: string[];
  /** A directory private to this job; removed by the agent when the job ends, however it ends. */
  workDir: string;
  /** Aborted when the job is cancelled, its lease is lost, it times out or the agent is forced to stop. */
  signal: AbortSignal;
  /** Reports progress; the agent forwards it with the next heartbeat and shows it in its view. */
  progress(stage: string, percent: number): void;
  /** Job-scoped log lines (the agent adds the job id). */
  log(severity: 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR', message: string, fields?: Record<string, unknown>): void;
}

/** The result a runner produces: the completion body without the lease fence. */
export type RunnerResult = Omit<CompleteRequest, 'lease_token'>;

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
}
