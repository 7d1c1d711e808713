import { HttpError } from '../http/types.js';
import { json, type Route, type RouteContext } from './route.js';

/**
 * The embedded blob store's object endpoints. No bearer token: the signed URL is the credential,
 * valid for one object, one method and a short time (as with Cloud Storage V4 signed URLs).
 */
function checked(ctx: RouteContext) {
  if (!ctx.fsBlobs) throw new HttpError(404, 'this deployment does not serve blobs (BLOB_STORE is not fs)');
  const object = ctx.params.object ?? '';
  const why = ctx.fsBlobs.verify(ctx.req.method, object, ctx.req.query, ctx.req.headers['content-type']);
  if (why) throw new HttpError(403, `signed URL refused: ${why}`);
  return { store: ctx.fsBlobs, object };
}

async function download(ctx: RouteContext) {
  const { store, object } = checked(ctx);
  const data = await store.get(object);
  if (!data) return json(404, { success: false, error: 'object not found' });
  const type = object.endsWith('.png') ? 'image/png' : object.endsWith('.dcm') ? 'application/dicom' : 'application/octet-stream';
  return { status: 200, body: null, raw: { data: ctx.req.method === 'HEAD' ? Buffer.alloc(0) : data, contentType: type }, headers: { 'content-disposition': `attachment; filename="${object.split('/').pop()}"` } };
}

export const blobRoutes: Route[] = [
  {
    method: 'PUT',
    path: 'blobs/*object',
    role: null,
    async handle(ctx) {
      const { store, object } = checked(ctx);
      const data = ctx.req.rawBody ?? Buffer.alloc(0);
      if (data.length > ctx.blobMaxBytes) throw new HttpError(413, `object larger than ${ctx.blobMaxBytes} bytes`);
      await store.put(object, data);
      return json(200, { success: true, object, bytes: data.length });
    },
  },
  { method: 'GET', path: 'blobs/*object', role: null, handle: download },
  { method: 'HEAD', path: 'blobs/*object', role: null, handle: download },
];
