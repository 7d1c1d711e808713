// The lab agent as a library (`@lab-relay/lab-agent`): the CLI's pieces, for embedding and for tests.
export { Agent, EXIT_AUTH, EXIT_OK, type AgentOptions } from './agent.js';
export { ApiClient, apiBase, type ApiClientOptions } from './api-client.js';
export { SETTINGS, resolveConfig, type AgentConfig, type Flags } from './config.js';
export { runDoctor, formatTable, doctorExitCode, type DoctorRow } from './doctor.js';
export { ApiError, AuthError, ConfigError, JobAbort, NetworkError, RunnerFailure } from './errors.js';
export { createLogger, type Logger, type LogRecord, type View } from './log.js';
export { Outbox, type OutboxEntry } from './outbox.js';
export { CommandRunner } from './runners/command.js';
export { createRunner, onnxRunnerAvailable } from './runners/registry.js';
export type { JobContext, Runner, RunnerCheck, RunnerFactoryOptions, RunnerResult } from './runners/types.js';
export { prepareRun, runCli, processIO, type CliIO } from './cli/program.js';
