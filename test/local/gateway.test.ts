/**
 * The gateway flavour (ref/gateway-create-batch.txt): `POST {BASE_URL}/api/v1/batches` with a bearer
 * token, the batch wrapped as `{success, code: "200", message, data}`, and every refusal kept in the
 * envelope with `success: false`.
 */
import { describe, expect, it } from 'vitest';
import { startLocalService } from '../../src/local/index.js';
import { tempDir } from '../helpers.js';
import { chatLines, clientFor, expectSchema, raw, serviceFor, upload, waitFor } from './support.js';

const dir = tempDir('bp-local-gateway-');
const { service, client } = await serviceFor({ timeScale: 3600 });

function gateway(body: unknown, init: { token?: string | null; target?: { url: string } } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.token !== null) headers.authorization = `Bearer ${init.token ?? 'gateway-token'}`;
  return raw(init.target ?? service, '/api/v1/batches', {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  });
}

describe('POST /api/v1/batches', () => {
  it('creates the batch and answers in the envelope, code "200"', async () => {
    const file = await upload(client, dir, chatLines(5));
    const res = await gateway({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { description: 'nightly eval job', ds_name: 'via-gateway' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, code: '200', message: 'successful' });
    const data = res.body.data as { id: string; object: string; status: string; created_at: number };
    expect(data).toMatchObject({
      object: 'batch',
      endpoint: '/v1/chat/completions',
      input_file_id: file.id,
      completion_window: '24h',
      status: 'validating',
    });
    expectSchema('Batch', data);
    // The same batch as any other: it runs, and /v1 retrieves it.
    expect((await waitFor(client, data.id)).status).toBe('completed');
    expect((await service.records()).batchesByDsName['via-gateway']).toBe(1);
  });

  it('keeps refusals in the envelope: success false, the status as code, the reason as message', async () => {
    const res = await gateway({
      input_file_id: 'file-batch-missing',
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      success: false,
      code: '400',
      message: expect.stringContaining('file-batch-missing'),
      data: null,
    });
    const window = await gateway({ input_file_id: 'file-batch-x', endpoint: '/v1/chat/completions' });
    expect(window.body).toMatchObject({ success: false, code: '400' });
  });

  it('wants a bearer token even when the service has no key', async () => {
    const res = await gateway({}, { token: null });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ success: false, code: '401', data: null });
  });

  it('checks the token against the service key, and answers faults and rate limits in the envelope', async () => {
    const keyed = await startLocalService({ apiKey: 'sk-gw', quotas: { createRate: 1 } });
    try {
      const file = await upload(clientFor(keyed, 'sk-gw'), dir, chatLines(2));
      const body = { input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' };
      const wrong = await gateway(body, { token: 'sk-other', target: keyed });
      expect(wrong.status).toBe(401);
      expect(wrong.body).toMatchObject({ success: false, code: '401' });
      keyed.faults.arm({ route: 'gateway.batches.create', kind: 'error', status: 503, times: 1 });
      const faulted = await gateway(body, { token: 'sk-gw', target: keyed });
      expect(faulted.status).toBe(503);
      expect(faulted.body).toMatchObject({ success: false, code: '503' });
      expect((await gateway(body, { token: 'sk-gw', target: keyed })).body).toMatchObject({ success: true });
      const throttled = await gateway(body, { token: 'sk-gw', target: keyed });
      expect(throttled.status).toBe(429);
      expect(throttled.body).toMatchObject({ success: false, code: '429' });
      expect(throttled.headers.get('retry-after')).toMatch(/^\d+$/);
    } finally {
      await keyed.close();
    }
  });
});
