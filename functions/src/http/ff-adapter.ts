import type { Request, Response } from '@google-cloud/functions-framework';
import { headerRecord, requestIdFrom, splitUrl } from './node-adapter.js';
import type { ApiRequest, ApiResponse } from './types.js';

/**
 * Adapts functions-framework's Express request to the neutral ApiRequest. The framework has
 * already read the body (req.rawBody) and parsed JSON ones; malformed JSON is refused by the
 * framework's own body parser with a plain 400 before it reaches us (see docs/decisions.md).
 */
export function functionsFrameworkHandler(getApp: () => (req: ApiRequest) => Promise<ApiResponse>) {
  return async (req: Request, res: Response): Promise<void> => {
    const headers = headerRecord(req.headers);
    const requestId = requestIdFrom(headers);
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    const { path, query } = splitUrl(req.originalUrl ?? req.url);
    const raw = (req as Request & { rawBody?: Buffer }).rawBody;
    let r: ApiResponse;
    try {
      r = await getApp()({
        method: req.method,
        path,
        query,
        headers,
        rawBody: Buffer.isBuffer(raw) ? raw : undefined,
        signal: ac.signal,
        requestId,
      });
    } catch (err) {
      // Only a configuration error at cold start gets here: fail loudly, without details.
      console.error(JSON.stringify({ severity: 'ERROR', message: 'API could not start', error: (err as Error).message }));
      r = { status: 503, body: { success: false, error: 'API is misconfigured; see the function logs' } };
    }
    if (res.headersSent) return;
    res.status(r.status);
    res.set({ 'cache-control': 'no-store', ...r.headers });
    if (r.raw) res.type(r.raw.contentType).send(r.raw.data);
    else if (r.status === 204 || r.body === null) res.end();
    else res.json(r.body);
  };
}
