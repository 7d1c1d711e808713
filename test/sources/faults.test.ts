// Bad servers, played by a small loopback HTTP server: slow, stalling, garbage, huge, flaky, refusing.
// Every case must end in a clear error (or a successful retry) within a bounded time and leave no files.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { DicomWebSource } from '../../lab-agent/src/sources/dicomweb.js';
import { OrthancSource } from '../../lab-agent/src/sources/orthanc.js';
import { failure, listFiles, openFilesUnder, removeDir, tempDir } from './helpers.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const STUDY = '1.2.3';
const SERIES = '1.2.3.4';
const ORTHANC_SERIES = 'aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee';
const INSTANCE = (i: number) => `0000000${i}-00000000-00000000-00000000-00000000`;

/** A minimal Part-10-looking file: preamble, DICM, payload. */
function fakeDicom(tag: number, size = 2000): Buffer {
  const b = Buffer.alloc(132 + size, tag);
  b.fill(0, 0, 128);
  b.write('DICM', 128, 'latin1');
  return b;
}

function multipart(parts: Buffer[], boundary: string): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), p, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

describe('sources against misbehaving servers', () => {
  let server: Server;
  let base: string;
  let handler: Handler;
  let requests: IncomingMessage[];
  let tmp: string;
  let n = 0;
  const dir = async () => {
    const d = path.join(tmp, `d${++n}`);
    await mkdir(d);
    return d;
  };
  const never = () => new AbortController().signal;
  const web = (o: Partial<ConstructorParameters<typeof DicomWebSource>[0]> = {}) =>
    new DicomWebSource({ baseUrl: `${base}/dicom-web`, auth: { kind: 'bearer', token: 'tok-123' }, timeoutMs: 2000, attempts: 3, backoffBaseMs: 20, backoffCapMs: 50, ...o });
  const rest = (o: Partial<ConstructorParameters<typeof OrthancSource>[0]> = {}) =>
    new OrthancSource({ baseUrl: base, auth: { kind: 'basic', user: 'u', password: 'p-secret' }, timeoutMs: 2000, attempts: 3, backoffBaseMs: 20, backoffCapMs: 50, ...o });

  beforeAll(async () => {
    tmp = await tempDir('faults');
    server = createServer((req, res) => {
      requests.push(req);
      handler(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await removeDir(tmp);
  });
  beforeEach(() => {
    requests = [];
  });

  const good = multipart([fakeDicom(1), fakeDicom(2), fakeDicom(3)], 'b0undary');
  const serveGood: Handler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"; boundary="b0undary"' });
    res.end(good);
  };

  it('DICOMweb: sends the bearer token and writes each part to a file', async () => {
    handler = serveGood;
    const d = await dir();
    const files = await web().fetchSeries(`${STUDY}:${SERIES}`, d, never());
    expect(files).toHaveLength(3);
    expect(requests[0]!.headers.authorization).toBe('Bearer tok-123');
    expect(requests[0]!.url).toBe(`/dicom-web/studies/${STUDY}/series/${SERIES}`);
    expect(requests[0]!.headers.accept).toBe('multipart/related; type="application/dicom"');
    // No on-the-fly gzip of DICOM (Orthanc compresses when asked; it made downloads ~5x slower).
    expect(requests[0]!.headers['accept-encoding']).toBe('identity');
  });

  it('a server that never answers: times out per attempt, retried, then a clear timeout error (no hang)', async () => {
    handler = () => {}; // never answers
    const t0 = Date.now();
    const err = await failure(web({ timeoutMs: 300, attempts: 2 }).fetchSeries(`${STUDY}:${SERIES}`, await dir(), never()));
    expect(err.message).toMatch(/DICOMweb server at http:\/\/127\.0\.0\.1:\d+\/dicom-web: GET .* for series 1\.2\.3:1\.2\.3\.4 timed out: no headers within 300 ms \(after 2 attempts\)/);
    expect(requests).toHaveLength(2);
    expect(Date.now() - t0).toBeLessThan(3000);
    const e2 = await failure(rest({ timeoutMs: 300, attempts: 1 }).fetchSeries(ORTHANC_SERIES, await dir(), never()));
    expect(e2.message).toMatch(/Orthanc at .* timed out: no headers within 300 ms/);
  });

  it('a server that stalls mid-body: idle timeout, and the partial files are removed', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"; boundary=b0undary' });
      res.write(good.subarray(0, good.length - 3000)); // two parts and a half, then silence
    };
    const d = await dir();
    const t0 = Date.now();
    const err = await failure(web({ timeoutMs: 400, attempts: 2 }).fetchSeries(`${STUDY}:${SERIES}`, d, never()));
    expect(err.message).toMatch(/timed out: no data within 400 ms \(after 2 attempts\)/);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await listFiles(d)).toEqual([]);
    expect(await openFilesUnder(d)).toEqual([]);
  });

  it('garbage answers are clear errors and are not retried', async () => {
    const cases: Array<[string, Handler, RegExp]> = [
      ['html', (_q, r) => r.writeHead(200, { 'content-type': 'text/html' }).end('<html>hi</html>'), /expected a multipart response, got Content-Type "text\/html"/],
      ['no boundary', (_q, r) => r.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"' }).end('x'), /without a valid boundary/],
      ['wrong boundary', (_q, r) => r.writeHead(200, { 'content-type': 'multipart/related; boundary=other' }).end(good), /no multipart delimiter/],
      ['truncated', (_q, r) => r.writeHead(200, { 'content-type': 'multipart/related; boundary=b0undary' }).end(good.subarray(0, good.length - 100)), /truncated/],
      ['not DICOM', (_q, r) => r.writeHead(200, { 'content-type': 'multipart/related; boundary=b0undary' }).end(multipart([Buffer.from('not dicom at all')], 'b0undary')), /part 1 is not a DICOM Part-10 file/],
      ['wrong part type', (_q, r) => r.writeHead(200, { 'content-type': 'multipart/related; boundary=XX' }).end('--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX--'), /part 1 is "text\/plain", not application\/dicom/],
      ['header flood', (_q, r) => r.writeHead(200, { 'content-type': 'multipart/related; boundary=XX' }).end(`--XX\r\n${'a'.repeat(40_000)}`), /header block over/],
      ['no parts', (_q, r) => r.writeHead(200, { 'content-type': 'multipart/related; boundary=XX' }).end('--XX--\r\n'), /with no instances/],
    ];
    for (const [name, h, re] of cases) {
      handler = h;
      requests = [];
      const d = await dir();
      const err = await failure(web().fetchSeries(`${STUDY}:${SERIES}`, d, never()));
      expect([name, err.message]).toEqual([name, expect.stringMatching(re)]);
      expect(err.message).toContain(`series ${STUDY}:${SERIES}`);
      expect([name, requests.length]).toEqual([name, 1]);
      expect([name, await listFiles(d)]).toEqual([name, []]);
    }
  });

  it('a huge body is cut off at the limit with a clear error and bounded memory', async () => {
    handler = (_req, res) => {
      let sent = 0;
      let stop = false;
      res.writeHead(200, { 'content-type': 'multipart/related; boundary=b0undary' });
      res.write(`--b0undary\r\nContent-Type: application/dicom\r\n\r\n`);
      res.write(fakeDicom(9, 0));
      const block = Buffer.alloc(1 << 20, 7);
      const pump = () => {
        while (!stop && sent < 2 ** 31) {
          sent += block.length;
          if (!res.write(block)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => (stop = true));
      pump();
    };
    const d = await dir();
    const mem = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const before = mem();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, mem())), 5);
    try {
      const err = await failure(web({ maxFileBytes: 48 << 20 }).fetchSeries(`${STUDY}:${SERIES}`, d, never()));
      expect(err.message).toMatch(/part 1 \(one DICOM instance\) is larger than the limit of 50331648 bytes/);
      const e2 = await failure(web({ maxSeriesBytes: 8 << 20 }).fetchSeries(`${STUDY}:${SERIES}`, d, never()));
      expect(e2.message).toMatch(/response is larger than the limit of 8388608 bytes/);
    } finally {
      clearInterval(sampler);
    }
    expect(requests).toHaveLength(2); // limits are not retried
    expect(peak - before).toBeLessThan(40 << 20);
    expect(await listFiles(d)).toEqual([]);
  });

  it('5xx and 429 are retried (Retry-After honoured within the cap); the retry succeeds', async () => {
    let i = 0;
    handler = (req, res) => {
      i++;
      if (i === 1) return void res.writeHead(503).end('busy');
      if (i === 2) return void res.writeHead(429, { 'retry-after': '0' }).end();
      serveGood(req, res);
    };
    const files = await web().fetchSeries(`${STUDY}:${SERIES}`, await dir(), never());
    expect(files).toHaveLength(3);
    expect(requests).toHaveLength(3);
  });

  it('a connection reset mid-body is retried and the second answer is written whole', async () => {
    let i = 0;
    handler = (req, res) => {
      if (++i === 1) {
        res.writeHead(200, { 'content-type': 'multipart/related; boundary=b0undary' });
        res.write(good.subarray(0, 3000), () => res.socket?.destroy());
        return;
      }
      serveGood(req, res);
    };
    const d = await dir();
    const files = await web().fetchSeries(`${STUDY}:${SERIES}`, d, never());
    expect(files).toHaveLength(3);
    expect((await listFiles(d)).sort()).toEqual([...files].sort());
    expect(requests).toHaveLength(2);
  });

  it('4xx is not retried: 404 names the series, 401/403 are auth errors without the credentials', async () => {
    handler = (_q, r) => void r.writeHead(404).end();
    await expect(web().fetchSeries(`${STUDY}:${SERIES}`, await dir(), never())).rejects.toThrow(`DICOMweb server has no series ${STUDY}:${SERIES} (study ${STUDY})`);
    expect(requests).toHaveLength(1);
    handler = (_q, r) => void r.writeHead(406).end();
    await expect(web().fetchSeries(`${STUDY}:${SERIES}`, await dir(), never())).rejects.toThrow(`DICOMweb server cannot send series ${STUDY}:${SERIES} uncompressed (406 Not Acceptable)`);
    expect(requests).toHaveLength(2);
    handler = (_q, r) => void r.writeHead(403).end('forbidden');
    const err = await failure(rest().fetchSeries(ORTHANC_SERIES, await dir(), never()));
    expect(err.message).toMatch(/Orthanc at http:\/\/127\.0\.0\.1:\d+ refused the credentials for series .* \(403\)/);
    expect(err.message).not.toContain('p-secret');
    expect(requests).toHaveLength(3);
  });

  it('QIDO: a bare SeriesInstanceUID is resolved to its study; an empty search (200 [] or 204) is "no series"', async () => {
    handler = (req, res) => {
      if (req.url?.startsWith('/dicom-web/series?')) {
        res.writeHead(200, { 'content-type': 'application/dicom+json' });
        return void res.end(JSON.stringify([{ '0020000D': { vr: 'UI', Value: [STUDY] }, '0020000E': { vr: 'UI', Value: [SERIES] } }]));
      }
      serveGood(req, res);
    };
    expect(await web().fetchSeries(SERIES, await dir(), never())).toHaveLength(3);
    expect(requests.map((r) => r.url)).toEqual([`/dicom-web/series?SeriesInstanceUID=${SERIES}&includefield=0020000D`, `/dicom-web/studies/${STUDY}/series/${SERIES}`]);
    handler = (_q, r) => void r.writeHead(200, { 'content-type': 'application/dicom+json' }).end('[]');
    await expect(web().fetchSeries(SERIES, await dir(), never())).rejects.toThrow(`DICOMweb server has no series ${SERIES}`);
    handler = (_q, r) => void r.writeHead(204).end();
    await expect(web().fetchSeries(SERIES, await dir(), never())).rejects.toThrow(`DICOMweb server has no series ${SERIES}`);
  });

  it('Orthanc REST: a flaky instance download is retried; a body that stalls times out and leaves nothing', async () => {
    let fails = 2;
    const files = [fakeDicom(1), fakeDicom(2), fakeDicom(3)];
    handler = (req, res) => {
      if (req.url === `/series/${ORTHANC_SERIES}`) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ Instances: [1, 2, 3].map(INSTANCE) }));
      const m = /^\/instances\/0000000(\d)-.*\/file$/.exec(req.url ?? '');
      if (!m) return void res.writeHead(404).end();
      if (m[1] === '2' && fails-- > 0) return void res.writeHead(500).end('oops');
      res.writeHead(200, { 'content-type': 'application/dicom' }).end(files[Number(m[1]) - 1]);
    };
    const d = await dir();
    const got = await rest({ concurrency: 2 }).fetchSeries(ORTHANC_SERIES, d, never());
    expect(got).toHaveLength(3);
    expect(requests).toHaveLength(1 + 3 + 2);

    handler = (req, res) => {
      if (req.url === `/series/${ORTHANC_SERIES}`) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ Instances: [1, 2, 3].map(INSTANCE) }));
      res.writeHead(200, { 'content-type': 'application/dicom' });
      res.write(files[0]!.subarray(0, 500)); // then silence
    };
    const d2 = await dir();
    const t0 = Date.now();
    const err = await failure(rest({ timeoutMs: 300, attempts: 2 }).fetchSeries(ORTHANC_SERIES, d2, never()));
    expect(err.message).toMatch(/Orthanc at .*instance .* of series aaaaaaaa-.* timed out: no data within 300 ms \(after 2 attempts\)/);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await listFiles(d2)).toEqual([]);
    expect(await openFilesUnder(d2)).toEqual([]);
  });

  it('abort while waiting on a slow server rejects at once with the abort reason', async () => {
    handler = () => {};
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('lease lost')), 100);
    const t0 = Date.now();
    await expect(web({ timeoutMs: 10_000 }).fetchSeries(`${STUDY}:${SERIES}`, await dir(), ac.signal)).rejects.toThrow('lease lost');
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
