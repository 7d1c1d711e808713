// The wire protocol: one source of truth for the web client, the job API and the lab agent.
export * from './common.js';
export * from './start.js';
export * from './claim.js';
export * from './heartbeat.js';
export * from './complete.js';
export * from './status.js';
export * from './operations.js';
export * from './result.js';
