/**
 * A loopback HTTP proxy between an agent and the API that a test steers: pass everything, cut the
 * network (refuse new connections, reset open ones), slow every chunk, hold or refuse the requests
 * that match, and drop the response to the next matching request (forwarded and answered by the API,
 * but the client's connection is closed before the answer reaches it: applied, never acknowledged).
 *
 * It works per HTTP request rather than per TCP stream so that a rule can name a request
 * ("POST .../complete") even on a keep-alive connection. Failures look like a network's: the client
 * sees a reset connection, never an answer the API did not give (no 502s of the proxy's own).
 */
import { createServer, request as upstreamRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { freePort } from './firestore-emulator.js';

export interface ProxiedRequest {
  method: string;
  /** Path and query as the client sent them. */
  path: string;
}

export type Matcher = (r: ProxiedRequest) => boolean;

/** `method` and a pattern over the path, e.g. `on('POST', /\/complete$/)`. */
export function on(method: string, path: RegExp): Matcher {
  return (r) => r.method === method && path.test(r.path);
}

export type ProxyOutcome = 'answered' | 'dropped' | 'refused' | 'client-gone' | 'upstream-error' | 'cut';

export interface ProxyRecord extends ProxiedRequest {
  at: number;
  /** The API's status, also for a dropped answer (null when the API never answered). */
  status: number | null;
  outcome: ProxyOutcome;
}

export interface TestProxy {
  url: string;
  port: number;
  /** Every request seen, in arrival order, completed with its outcome. */
  readonly records: ProxyRecord[];
  /** Connections reset while the network was cut, before any request was read from them. */
  readonly cutConnections: number;
  /** Everything flows again: no cut, no slowing, no delays, no refusals (pending drops stay armed). */
  pass(): void;
  /** The network is down: new connections are reset at once and open ones are reset now. */
  cut(): void;
  /** Delay every chunk, in both directions, by `ms` (0 = off). */
  slow(ms: number): void;
  /** Hold each matching request `ms` before forwarding it; if its client goes away meanwhile it is never forwarded. */
  delay(match: Matcher, ms: number): void;
  /** Reset matching requests without forwarding them (a partial outage). */
  refuse(match: Matcher): void;
  /** Forward the next matching request, let the API answer, then reset the client's connection instead of answering. */
  dropNextResponse(match: Matcher): Promise<ProxyRecord>;
  /** Resolves when a matching request arrives (before it is forwarded). */
  nextRequest(match: Matcher, timeoutMs?: number): Promise<ProxiedRequest>;
  /** Counts of the API's statuses by class ('2xx', '4xx', '5xx') and 'none' for requests it never answered. */
  statusCounts(): Record<string, number>;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/** A pause that never keeps the process alive and ends early when `res`'s connection closes. */
function pause(ms: number, res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    t.unref();
    res.once('close', done);
    function done() {
      clearTimeout(t);
      res.off('close', done);
      resolve();
    }
  });
}

/** Starts the proxy on a free loopback port in front of `upstreamPort` (which need not be listening yet). */
export async function startProxy(upstreamPort: number, o: { port?: number } = {}): Promise<TestProxy> {
  const port = o.port ?? (await freePort());
  const sockets = new Set<Socket>();
  const upstreams = new Set<ClientRequest>();
  const records: ProxyRecord[] = [];
  const active = new Set<ProxyRecord>();
  let cutConnections = 0;
  let isCut = false;
  let chunkDelayMs = 0;
  let delays: Array<{ match: Matcher; ms: number }> = [];
  let refusals: Matcher[] = [];
  const drops: Array<{ match: Matcher; resolve: (r: ProxyRecord) => void }> = [];
  const watchers: Array<{ match: Matcher; resolve: (r: ProxiedRequest) => void }> = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const info: ProxiedRequest = { method: req.method ?? 'GET', path: req.url ?? '/' };
    const rec: ProxyRecord = { ...info, at: Date.now(), status: null, outcome: 'client-gone' };
    records.push(rec);
    active.add(rec);
    res.on('close', () => active.delete(rec));
    for (let i = watchers.length - 1; i >= 0; i--) {
      if (watchers[i]!.match(info)) watchers.splice(i, 1)[0]!.resolve(info);
    }
    let clientGone = false;
    res.on('close', () => {
      if (!res.writableFinished) clientGone = true;
    });
    const reset = (outcome: ProxyOutcome) => {
      rec.outcome = outcome;
      req.socket.destroy();
    };
    if (isCut) return reset('cut');
    if (refusals.some((m) => m(info))) return reset('refused');
    const hold = delays.find((d) => d.match(info));
    if (hold) await pause(hold.ms, res);
    if (clientGone) return;
    if (isCut) return reset('cut');

    const headers = { ...req.headers, host: `127.0.0.1:${upstreamPort}` };
    const up = upstreamRequest({ host: '127.0.0.1', port: upstreamPort, method: info.method, path: info.path, headers });
    upstreams.add(up);
    up.on('close', () => upstreams.delete(up));
    // A client that leaves takes its request with it, as a dropped TCP connection would.
    res.on('close', () => {
      if (clientGone && rec.outcome !== 'dropped') up.destroy();
    });
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      up.once('response', resolve);
      up.once('error', reject);
    });
    answered.catch(() => undefined);
    try {
      for await (const chunk of req) {
        if (chunkDelayMs) await pause(chunkDelayMs, res);
        if (clientGone || isCut) break;
        up.write(chunk);
      }
      if (clientGone || isCut) {
        up.destroy();
        return reset(isCut ? 'cut' : 'client-gone');
      }
      up.end();
      const upRes = await answered;
      rec.status = upRes.statusCode ?? null;
      const dropAt = drops.findIndex((d) => d.match(info));
      if (dropAt >= 0) {
        // Let the API finish its answer (the change is applied), then the client never sees it.
        const drop = drops.splice(dropAt, 1)[0]!;
        for await (const _ of upRes) void _;
        reset('dropped');
        drop.resolve(rec);
        return;
      }
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(upRes.statusCode ?? 502, out);
      for await (const chunk of upRes) {
        if (chunkDelayMs) await pause(chunkDelayMs, res);
        if (clientGone) return;
        if (isCut) return reset('cut');
        res.write(chunk);
      }
      res.end();
      rec.outcome = 'answered';
    } catch {
      if (rec.outcome === 'client-gone' && !clientGone) reset(isCut ? 'cut' : 'upstream-error');
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s: Socket) => {
    if (isCut) {
      cutConnections++;
      s.destroy();
      return;
    }
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));

  const resetAll = () => {
    for (const r of active) if (r.outcome === 'client-gone') r.outcome = 'cut';
    for (const s of sockets) s.destroy();
    for (const u of upstreams) u.destroy();
  };

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    records,
    get cutConnections() {
      return cutConnections;
    },
    pass() {
      isCut = false;
      chunkDelayMs = 0;
      delays = [];
      refusals = [];
    },
    cut() {
      isCut = true;
      resetAll();
    },
    slow(ms) {
      chunkDelayMs = ms;
    },
    delay(match, ms) {
      delays.push({ match, ms });
    },
    refuse(match) {
      refusals.push(match);
    },
    dropNextResponse(match) {
      return new Promise((resolve) => drops.push({ match, resolve }));
    },
    nextRequest(match, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const w = {
          match,
          resolve: (r: ProxiedRequest) => {
            clearTimeout(t);
            resolve(r);
          },
        };
        const t = setTimeout(() => {
          watchers.splice(watchers.indexOf(w), 1);
          reject(new Error(`no matching request reached the proxy within ${timeoutMs} ms`));
        }, timeoutMs);
        watchers.push(w);
      });
    },
    statusCounts() {
      const c: Record<string, number> = {};
      for (const r of records) {
        const k = r.status === null ? 'none' : `${Math.floor(r.status / 100)}xx`;
        c[k] = (c[k] ?? 0) + 1;
      }
      return c;
    },
    async close() {
      isCut = true;
      resetAll();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
