import { isBatchpipeError } from '../../errors.js';
import { badRequest, notFound } from '../api-error.js';
import { parseFaultRules } from '../faults.js';
import { readJsonBody } from '../http.js';
import { isBatchId } from '../ids.js';
import type { Route } from '../state.js';

/** Longest a restart may keep the service down, real ms. */
const MAX_DOWN_MS = 600_000;

/**
 * The service's own controls, for tests and rehearsals: arm and disarm faults while it runs, end a
 * batch's window now, crash or restart the service. They need the key like every call, and never
 * meet faults or rate limits themselves.
 */
export const adminRoutes: Route[] = [
  {
    name: 'admin.faults.list',
    method: 'GET',
    pattern: /^\/_batchpipe\/faults$/,
    service: true,
    async handler({ state }) {
      return { object: 'list', data: state.faults.list(), events: state.faults.events() };
    },
  },
  {
    name: 'admin.faults.arm',
    method: 'POST',
    pattern: /^\/_batchpipe\/faults$/,
    service: true,
    async handler({ req, state }) {
      const { value } = await readJsonBody(req, 1024 * 1024);
      const rules =
        value !== null && typeof value === 'object' && !Array.isArray(value) && 'faults' in value
          ? (value as { faults: unknown }).faults
          : value;
      try {
        return { object: 'list', data: state.faults.arm(parseFaultRules(rules, 'faults')) };
      } catch (error) {
        if (isBatchpipeError(error)) throw badRequest(error.message, null, 'invalid_fault');
        throw error;
      }
    },
  },
  {
    name: 'admin.faults.disarm',
    method: 'DELETE',
    pattern: /^\/_batchpipe\/faults(?:\/([^/]+))?$/,
    service: true,
    async handler({ state, params }) {
      const id = params[0] || undefined;
      const disarmed = state.faults.disarm(id);
      if (id !== undefined && disarmed === 0) throw notFound(`No such fault: ${id}`, 'id');
      return { disarmed };
    },
  },
  {
    name: 'admin.batches.expire',
    method: 'POST',
    pattern: /^\/_batchpipe\/batches\/([^/]+)\/expire$/,
    service: true,
    async handler({ state, params }) {
      const id = params[0]!;
      const record = isBatchId(id) ? state.batches.get(id) : undefined;
      if (!record) throw notFound(`No such Batch object: ${id}`, 'batch_id');
      await state.scheduler.expireNow(record);
      return record.batch;
    },
  },
  {
    name: 'admin.restart',
    method: 'POST',
    pattern: /^\/_batchpipe\/restart$/,
    service: true,
    async handler({ req, res, state }) {
      const declared = Number(req.headers['content-length'] ?? 0);
      const { value } =
        declared > 0 || req.headers['transfer-encoding']
          ? await readJsonBody(req, 4096)
          : { value: {} as unknown };
      const options = (value ?? {}) as { crash?: unknown; downMs?: unknown };
      const crash = options.crash ?? false;
      const downMs = options.downMs ?? 0;
      if (typeof crash !== 'boolean') throw badRequest('crash must be true or false', 'crash');
      if (typeof downMs !== 'number' || !Number.isInteger(downMs) || downMs < 0 || downMs > MAX_DOWN_MS)
        throw badRequest(`downMs must be an integer from 0 to ${MAX_DOWN_MS}`, 'downMs');
      // Restart once the reply is out: the restart closes every connection, this one too.
      res.once('finish', () => void state.control.restart({ crash, downMs }).catch(() => {}));
      return { restarting: true, crash, downMs };
    },
  },
];
