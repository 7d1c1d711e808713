import { json, type Route } from './route.js';

/** Open endpoints: health for load balancers, and how the web page should sign in. */
export const healthRoutes: Route[] = [
  {
    method: 'GET',
    path: 'web-config',
    role: null,
    async handle({ webConfig }) {
      return json(200, webConfig);
    },
  },
  {
    method: 'GET',
    path: 'healthz',
    role: null,
    async handle({ service, log }) {
      try {
        // Answer a load balancer quickly either way (the request deadline would take longer).
        await Promise.race([service.health(), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5000).unref())]);
        return json(200, { ok: true, store: service.storeKind });
      } catch (err) {
        log.log('ERROR', 'health check failed', { error: (err as Error).message });
        return json(503, { ok: false, store: service.storeKind, error: 'store unreachable' });
      }
    },
  },
];
