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
      const data = await createBatch(ctx);
      return { success: true, code: '200', message: 'successful', data };
    },
  },
];
