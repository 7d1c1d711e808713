/**
 * The `command` runner starts the lab's own program once per job. That program needs the job (stdin) and
 * its work folder, not the agent's API credential: with the token in its environment, anything the
 * program does — a traceback dumping the environment, a subprocess, a log shipper — can carry the token
 * that lets anyone claim and complete jobs. Configured as the README recommends (the token in the
 * environment, not a flag), the token must not reach the program.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startAgent, waitFor, type InProcessAgent } from '../agent/helpers.js';
import { AGENT_TOKEN, startTestApi, type TestApi } from '../harness/api-server.js';
import { tempDir } from '../imaging/helpers.js';

// Reports, as its result, which environment variables hold the agent token (names only, never the value).
const PROGRAM = [
  "let t = ''; process.stdin.on('data', (c) => (t += c)).on('end', () => {",
  '  const token = process.env.EXPECTED_SECRET_SHA;',
  "  const h = (v) => require('node:crypto').createHash('sha256').update(v).digest('hex');",
  '  const holders = Object.entries(process.env).filter(([k, v]) => k !== "EXPECTED_SECRET_SHA" && v && h(v) === token).map(([k]) => k);',
  '  console.log(JSON.stringify({ success: true, token_holders: holders }));',
  '});',
].join('\n');

describe('the command runner and the agent token', () => {
  const tmp = tempDir('command-env');
  let api: TestApi;
  let agent: InProcessAgent;

  beforeAll(async () => {
    api = await startTestApi();
    const script = path.join(tmp.dir, 'program.cjs');
    writeFileSync(script, PROGRAM);
    const sha = createHash('sha256').update(AGENT_TOKEN).digest('hex');
    agent = await startAgent(
      { apiUrl: api.url, token: undefined, command: `node ${script}`, outbox: path.join(tmp.dir, 'outbox'), workDir: path.join(tmp.dir, 'work'), pollWait: '1', agentId: 'env-agent' },
      // The token from the environment, as the README and the systemd unit configure it.
      { INFERENCE_AGENT_TOKEN: AGENT_TOKEN, EXPECTED_SECRET_SHA: sha },
    );
  });

  afterAll(async () => {
    await agent?.stop();
    await api?.close();
    tmp.cleanup();
  });

  // Was a finding (fixed by withoutSecrets in lab-agent/src/runners/command.ts, CommandRunner.run; lab-agent/src/cli/program.ts, prepareRun):
  // the child's environment is `{ ...process.env, ...o.env }`, and o.env is the agent's own environment
  // merged with its .env file — so INFERENCE_AGENT_TOKEN (and AGENT_SOURCE_PASSWORD / AGENT_PACS_PASSWORD
  // when set) reach the lab's program. Measured: the program sees the token as INFERENCE_AGENT_TOKEN.
  it('the lab program does not receive the agent token in its environment', async () => {
    expect((await api.call('POST', '/api/inference/env-1/start', { body: { series_ids: ['a', 'b', 'c', 'd'] } })).status).toBe(202);
    const done = await waitFor('the job to end', async () => {
      const s = (await api.call('GET', '/api/inference/env-1/status')).body;
      return s.status === 'completed' || s.status === 'failed' ? s : null;
    }, 30_000, 200);
    expect(done.status).toBe('completed');
    expect(done.result.token_holders).toEqual([]);
  }, 40_000);
});
