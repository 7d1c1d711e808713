import type { ApiResponse } from './types.js';

/** CORS for the configured web origins only (`*` allows any, for public demos). */
export function corsHeaders(origin: string | undefined, allowed: string[]): Record<string, string> {
  if (!origin || !(allowed.includes('*') || allowed.includes(origin))) return {};
  return { 'access-control-allow-origin': origin, vary: 'Origin' };
}

export function preflight(origin: string | undefined, allowed: string[]): ApiResponse {
  const base = corsHeaders(origin, allowed);
  if (!base['access-control-allow-origin']) return { status: 204, body: null, headers: {} };
  return {
    status: 204,
    body: null,
    headers: {
      ...base,
      'access-control-allow-methods': 'GET, POST, OPTIONS',
      'access-control-allow-headers': 'authorization, content-type, x-agent-id',
      'access-control-max-age': '600',
    },
  };
}
