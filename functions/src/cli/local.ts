/**
 * `npm start`: the local system on loopback with embedded state under .data/. Creates the agent and
 * client tokens once (.data/tokens.env, mode 0600) so a second start keeps them, then serves the API.
 * (The web page, a lab agent and the demo study join this launcher in later work.)
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const DATA = resolve(process.env.DATA_DIR ?? '.data');
const TOKENS = resolve(DATA, 'tokens.env');

function ensureTokens(): Record<string, string> {
  mkdirSync(DATA, { recursive: true });
  if (!existsSync(TOKENS)) {
    const t = () => randomBytes(24).toString('base64url');
    writeFileSync(TOKENS, `INFERENCE_AGENT_TOKENS=${t()}\nINFERENCE_CLIENT_TOKENS=${t()}\n`, { mode: 0o600 });
  }
  if (!readFileSync(TOKENS, 'utf8').includes('BLOB_SIGNING_SECRET=')) {
    // Signed output URLs must survive a restart of the local system.
    writeFileSync(TOKENS, `BLOB_SIGNING_SECRET=${randomBytes(32).toString('base64url')}\n`, { flag: 'a', mode: 0o600 });
  }
  const out: Record<string, string> = {};
  for (const line of readFileSync(TOKENS, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

const tokens = ensureTokens();
for (const [k, v] of Object.entries(tokens)) process.env[k] ??= v;
process.env.SQLITE_PATH ??= resolve(DATA, 'jobs.sqlite');
process.env.BLOB_DIR ??= resolve(DATA, 'blobs');
const port = process.env.PORT ?? '8080';
process.stderr.write(
  [
    '',
    `  Lab relay (local): http://127.0.0.1:${port}/api/healthz`,
    `  Job table:        ${process.env.SQLITE_PATH}`,
    `  Tokens:           ${TOKENS} (client token for the viewer/curl, agent token for lab agents)`,
    `  Try:              source ${TOKENS} && curl -H "Authorization: Bearer $INFERENCE_CLIENT_TOKENS" http://127.0.0.1:${port}/api/metrics`,
    '',
  ].join('\n') + '\n',
);
await import('./serve.js');
