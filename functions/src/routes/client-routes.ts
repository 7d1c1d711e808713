import { Identifier, ListQuery, RequestId, StartRequest } from '@lab-relay/protocol';
import { z } from 'zod';
import { validate } from '../http/validate.js';
import { json, type Route } from './route.js';

const SeriesParam = z.object({ series_id: Identifier });
const IdParam = z.object({ id: RequestId });

/** Endpoints for the viewer, a backend, and operators. */
export const clientRoutes: Route[] = [
  {
    method: 'POST',
    path: 'inference/:series_id/start',
    permission: 'clinician',
    role: 'client',
    async handle({ params, body, service }) {
      const { series_id } = validate(SeriesParam, params, 'path');
      const input = validate(StartRequest, body ?? {}, 'body');
      const r = await service.start(series_id, input);
      return json(r.created ? 202 : 200, r.body);
    },
  },
  {
    method: 'GET',
    path: 'inference/:series_id/status',
    permission: 'clinician',
    role: 'client',
    async handle({ params, service }) {
      const { series_id } = validate(SeriesParam, params, 'path');
      const view = await service.status(series_id);
      return view ? json(200, view) : json(404, { success: false, error: 'Not found' });
    },
  },
  {
    method: 'POST',
    path: 'inference/:id/cancel',
    permission: 'clinician',
    role: 'client',
    async handle({ params, service }) {
      const { id } = validate(IdParam, params, 'path');
      return json(200, { success: true, request: await service.cancel(id) });
    },
  },
  {
    method: 'POST',
    path: 'inference/:id/retry',
    permission: 'operator',
    role: 'client',
    async handle({ params, service }) {
      const { id } = validate(IdParam, params, 'path');
      return json(200, { success: true, request: await service.retry(id) });
    },
  },
  {
    method: 'GET',
    path: 'inference',
    permission: 'operator',
    role: 'client',
    async handle({ req, service }) {
      const q = validate(ListQuery, Object.fromEntries(req.query), 'query');
      return json(200, await service.list(q));
    },
  },
  {
    method: 'GET',
    path: 'metrics',
    permission: 'operator',
    role: 'client',
    async handle({ service }) {
      return json(200, await service.metrics());
    },
  },
];
