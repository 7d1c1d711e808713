import { CompleteRequest, HeartbeatRequest, PendingQuery, RequestId, UploadsRequest } from '@lab-relay/protocol';
import { z } from 'zod';
import { validate } from '../http/validate.js';
import { json, type Route } from './route.js';

const IdParam = z.object({ id: RequestId });

/** Endpoints for lab agents: claim, heartbeat, complete. */
export const agentRoutes: Route[] = [
  {
    method: 'GET',
    path: 'inference/pending',
    role: 'agent',
    async handle({ req, service, agentId }) {
      const q = validate(PendingQuery, Object.fromEntries(req.query), 'query');
      const job = await service.claim(agentId, (q.wait ?? 0) * 1000, req.signal, q.ack === '1');
      return json(200, job ?? { id: null });
    },
  },
  {
    method: 'POST',
    path: 'inference/:id/heartbeat',
    role: 'agent',
    async handle({ params, body, service, agentId }) {
      const { id } = validate(IdParam, params, 'path');
      const hb = validate(HeartbeatRequest, body ?? {}, 'body');
      return json(200, await service.heartbeat(id, agentId, hb));
    },
  },
  {
    method: 'POST',
    path: 'inference/:id/uploads',
    role: 'agent',
    async handle({ params, body, service }) {
      const { id } = validate(IdParam, params, 'path');
      const u = validate(UploadsRequest, body ?? {}, 'body');
      return json(200, { success: true, uploads: await service.uploads(id, u.lease_token) });
    },
  },
  {
    method: 'POST',
    path: 'inference/:id/complete',
    role: 'agent',
    async handle({ params, body, service, agentId }) {
      const { id } = validate(IdParam, params, 'path');
      const c = validate(CompleteRequest, body ?? {}, 'body');
      return json(200, await service.complete(id, agentId, c));
    },
  },
];
