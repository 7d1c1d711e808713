/**
 * `npm run api`: the API alone on $PORT with the configured store, over node:http (the same app as
 * the Cloud Function). Ctrl+C / SIGTERM drain in-flight requests, then close the store.
 */
import { createServer } from 'node:http';
import { createApi } from '../api.js';
import { ConfigError, loadConfig } from '../config.js';
import { nodeListener } from '../http/node-adapter.js';
import { serveStatic } from '../http/static-files.js';
import { createLogger } from '../log.js';

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(err.message + '\n');
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger({ level: cfg.LOG_LEVEL });
  if (cfg.INFERENCE_AGENT_TOKENS.length === 0 || cfg.INFERENCE_CLIENT_TOKENS.length === 0) {
    log.log('WARNING', 'INFERENCE_AGENT_TOKENS or INFERENCE_CLIENT_TOKENS is empty: those endpoints will answer 401 to everyone');
  }
  const api = createApi(cfg, { log });
  const webDir = cfg.WEB_DIR;
  const server = createServer(nodeListener(api.handle, api.bodyLimit, webDir ? (p, m) => serveStatic(webDir, p, m) : undefined));
  // Long-polls hold a request up to 25 s; keep idle sockets past that so agents reuse connections.
  server.keepAliveTimeout = 65_000;
  server.listen(cfg.PORT, cfg.HOST, () => {
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : cfg.PORT;
    log.log('INFO', `API listening on http://${cfg.HOST}:${port}`, { store: api.store.kind, port });
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    log.log('INFO', `${signal}: shutting down`);
    void api.service.close(); // releases waiting long-polls at once
    server.close(() => void api.close().then(() => process.exit(0)));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

void main();
