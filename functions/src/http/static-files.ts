import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { ApiResponse } from './types.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.webmanifest': 'application/manifest+json',
};

/**
 * Serves the web page from a folder on the local system (in the cloud, Firebase Hosting does this).
 * Only files inside the folder; a path with no extension falls back to index.html (client routing).
 */
export async function serveStatic(root: string, urlPath: string, method: string): Promise<ApiResponse | null> {
  if (method !== 'GET' && method !== 'HEAD') return null;
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  const base = resolve(root);
  let file = normalize(join(base, rel));
  if (file !== base && !file.startsWith(base + sep)) return null;
  try {
    if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
  } catch {
    if (extname(file)) return null;
    file = join(base, 'index.html');
  }
  try {
    const data = await readFile(file);
    return {
      status: 200,
      body: null,
      raw: { data: method === 'HEAD' ? Buffer.alloc(0) : data, contentType: TYPES[extname(file)] ?? 'application/octet-stream' },
      headers: { 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' },
    };
  } catch {
    return null;
  }
}
