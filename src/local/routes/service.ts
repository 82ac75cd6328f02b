import type { Route } from '../state.js';

/** The service's own routes, outside the OpenAI paths: its records, and whether it is up. */
export const serviceRoutes: Route[] = [
  {
    name: 'service.records',
    method: 'GET',
    pattern: /^\/_batchpipe\/records$/,
    service: true,
    async handler({ state }) {
      return state.records.read();
    },
  },
  {
    name: 'service.health',
    method: 'GET',
    pattern: /^\/_batchpipe\/health$/,
    service: true,
    async handler({ state }) {
      return {
        status: 'ok',
        engine: state.engine.name,
        profile: state.rules.profile,
        time_scale: state.clock.scale,
        now: state.clock.now(),
      };
    },
  },
];
