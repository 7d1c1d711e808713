import { json, type Route } from './route.js';

/** Open to load balancers and uptime checks: says only whether the store answers. */
export const healthRoutes: Route[] = [
  {
    method: 'GET',
    path: 'healthz',
    role: null,
    async handle({ service, log }) {
      try {
        await service.health();
        return json(200, { ok: true, store: service.storeKind });
      } catch (err) {
        log.log('ERROR', 'health check failed', { error: (err as Error).message });
        return json(503, { ok: false, store: service.storeKind, error: 'store unreachable' });
      }
    },
  },
];
