import { createHash, createVerify, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';

/**
 * A loopback stand-in for Cloud Storage's signed-URL check, written from the V4 signing rules
 * (canonical request -> string to sign -> RSA-SHA256 over it with the service account's key), so
 * URLs minted by the API are verified independently of the library that signed them.
 */
export interface V4Verifier {
  server: Server;
  url: string;
  objects: Map<string, { data: Buffer; contentType: string }>;
  /** The verifier's clock (ms); tests move it to check expiry. */
  clock: { now: number | null };
  close(): Promise<void>;
}

const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

export function verifyV4(
  method: string,
  rawPath: string,
  query: URLSearchParams,
  headers: Record<string, string | undefined>,
  publicKey: KeyObject,
  clientEmail: string,
  now: number,
): string | null {
  if (query.get('X-Goog-Algorithm') !== 'GOOG4-RSA-SHA256') return 'algorithm';
  const credential = query.get('X-Goog-Credential') ?? '';
  const [email, date, region, service, kind] = credential.split('/');
  if (email !== clientEmail || region !== 'auto' || service !== 'storage' || kind !== 'goog4_request') return 'credential';
  const stamp = query.get('X-Goog-Date') ?? '';
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp);
  if (!m || stamp.slice(0, 8) !== date) return 'date';
  const start = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  const expires = Number(query.get('X-Goog-Expires'));
  if (!(expires > 0 && expires <= 604800)) return 'expires';
  if (now > start + expires * 1000) return 'expired';
  const signedHeaders = (query.get('X-Goog-SignedHeaders') ?? '').split(';');
  const canonicalHeaders = signedHeaders
    .map((h) => {
      // Real GCS is reached on its default port, so the signed host has none; strip the test port.
      const v = h === 'host' ? (headers.host ?? '').replace(/:\d+$/, '') : (headers[h] ?? '');
      return `${h}:${v.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const canonicalQuery = [...query.entries()]
    .filter(([k]) => k !== 'X-Goog-Signature')
    .map(([k, v]) => [enc(k), enc(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [method, rawPath, canonicalQuery, canonicalHeaders, signedHeaders.join(';'), 'UNSIGNED-PAYLOAD'].join('\n');
  const toSign = ['GOOG4-RSA-SHA256', stamp, `${date}/auto/storage/goog4_request`, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const sig = Buffer.from(query.get('X-Goog-Signature') ?? '', 'hex');
  return createVerify('RSA-SHA256').update(toSign).verify(publicKey, sig) ? null : 'signature';
}

export async function startV4Verifier(publicKey: KeyObject, clientEmail: string): Promise<V4Verifier> {
  const objects = new Map<string, { data: Buffer; contentType: string }>();
  const clock = { now: null as number | null };
  const server = createServer((req, res) => {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]));
    const why = verifyV4(req.method ?? 'GET', path, query, headers, publicKey, clientEmail, clock.now ?? Date.now());
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (why) {
        res.writeHead(403, { 'content-type': 'application/xml' }).end(`<Error><Code>SignatureDoesNotMatch</Code><Message>${why}</Message></Error>`);
        return;
      }
      if (req.method === 'PUT') {
        objects.set(path, { data: Buffer.concat(chunks), contentType: req.headers['content-type'] ?? '' });
        res.writeHead(200).end();
      } else {
        const o = objects.get(path);
        if (!o) res.writeHead(404).end();
        else res.writeHead(200, { 'content-type': o.contentType }).end(o.data);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, url: `http://127.0.0.1:${port}`, objects, clock, close: () => new Promise((r) => server.close(() => r())) };
}
