import { ApiError } from '../api-error.js';
import type { Route } from '../state.js';
import { createBatch } from './batches.js';

/**
 * The gateway flavour of batch creation (ref/gateway-create-batch.txt): `POST {BASE_URL}/api/v1/batches`
 * with a bearer token and the same body as `POST /v1/batches`, answered in the gateway's envelope
 * `{success, code, message, data}` with `code` a string ("200"). A refusal keeps the envelope:
 * `success: false`, the HTTP status as `code`, the reason as `message`, `data: null`, under the same
 * HTTP status. The batch is the same batch: retrieve, list, cancel and files go through `/v1`.
 */
/** The fields of `data` the document lists. */
const DOCUMENTED_FIELDS = [
  'id',
  'object',
  'endpoint',
  'input_file_id',
  'completion_window',
  'status',
  'created_at',
];

export const gatewayRoutes: Route[] = [
  {
    name: 'gateway.batches.create',
    method: 'POST',
    pattern: /^\/api\/v1\/batches$/,
    errorBody: (error) => ({
      success: false,
      code: String(error.status),
      message: error.message,
      data: null,
    }),
    async handler(ctx) {
      // The document makes Authorization required; a service without a key still wants one sent.
      if (!/^Bearer\s+\S/i.test(ctx.req.headers.authorization ?? ''))
        throw new ApiError(
          401,
          'Authorization is required: send Authorization: Bearer <token>',
          'missing_api_key',
        );
      const { data: fields, refusalStatus } = ctx.state.config.gateway;
      let data: Record<string, unknown>;
      try {
        data = (await createBatch(ctx)) as unknown as Record<string, unknown>;
      } catch (error) {
        if (refusalStatus !== '200' || !(error instanceof ApiError)) throw error;
        return { success: false, code: String(error.status), message: error.message, data: null };
      }
      if (fields === 'documented')
        data = Object.fromEntries(DOCUMENTED_FIELDS.map((name) => [name, data[name]]));
      return { success: true, code: '200', message: 'successful', data };
    },
  },
];
