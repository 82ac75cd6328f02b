/**
 * Fault injection on API calls: errors with the provider's statuses and codes (429 with retry-after,
 * 500, 503), slow calls, dropped connections, and the nastiest, a reply lost after the commit (the
 * upload is stored, the batch created and both recorded, yet the client sees only a broken
 * connection), armed precisely ("the next 2 creates", "the first upload") or at a seeded rate,
 * from options, in-process or over HTTP.
 */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { startLocalService } from '../../src/local/index.js';
import { tempDir } from '../helpers.js';
import { chatLines, raw, serviceFor, submit, upload, waitFor } from './support.js';

const dir = tempDir('bp-local-faults-');
const { service, client } = await serviceFor({ timeScale: 3600 });

function createParams(fileId: string): OpenAI.Batches.BatchCreateParams {
  return { input_file_id: fileId, endpoint: '/v1/chat/completions', completion_window: '24h' };
}

describe('errors on API calls', () => {
  it('fails the next 2 batch creates with 503, then creates; nothing is committed by a refused call', async () => {
    const file = await upload(client, dir, chatLines(3));
    const [armed] = service.faults.arm({ route: 'batches.create', kind: 'error', status: 503, times: 2 });
    const before = (await service.records()).calls.length;
    for (let i = 0; i < 2; i++) {
      const error = await client.batches.create(createParams(file.id)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
      expect(error).toMatchObject({ status: 503, code: 'service_unavailable' });
    }
    const batch = await client.batches.create(createParams(file.id));
    expect(batch.status).toBe('validating');
    const calls = (await service.records()).calls.slice(before);
    expect(calls.map((c) => c.op)).toEqual(['batch.create']);
    expect(service.faults.list().find((f) => f.id === armed!.id)).toMatchObject({
      fired: 2,
      seen: 2,
      spent: true,
    });
  });

  it('answers 429 with retry-after, which the SDK honours when it retries', async () => {
    const batch = await submit(client, dir, chatLines(2));
    service.faults.arm({ route: 'batches.retrieve', kind: 'error', status: 429, retryAfterMs: 40, times: 1 });
    const refused = await raw(service, `/v1/batches/${batch.id}`);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after-ms')).toBe('40');
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'rate_limit_error' });

    service.faults.arm({ route: 'batches.retrieve', kind: 'error', status: 429, retryAfterMs: 40, times: 2 });
    const retrying = new OpenAI({ baseURL: service.url, apiKey: 'local', maxRetries: 2 });
    const started = performance.now();
    expect((await retrying.batches.retrieve(batch.id)).id).toBe(batch.id);
    expect(performance.now() - started).toBeGreaterThanOrEqual(75);
  });

  it('answers 500 with a code and message of its own choosing', async () => {
    service.faults.arm({
      route: 'files.list',
      kind: 'error',
      status: 500,
      code: 'InternalError',
      message: 'Internal error',
      times: 1,
    });
    const res = await raw(service, '/v1/files');
    expect(res.status).toBe(500);
    expect(res.body.error).toMatchObject({ code: 'InternalError', type: 'server_error' });
    expect(String((res.body.error as { message: string }).message)).toContain('Internal error');
    expect((await raw(service, '/v1/files')).status).toBe(200);
  });

  it('matches routes by pattern, lets `after` calls through, and stops after `times`', async () => {
    service.faults.arm({ route: '*.list', kind: 'error', status: 500, after: 1, times: 2 });
    const statuses = [];
    for (const path of ['/v1/batches', '/v1/files', '/v1/batches', '/v1/files']) {
      statuses.push((await raw(service, path)).status);
    }
    expect(statuses).toEqual([200, 500, 500, 200]);
  });

  it('reads an upload before refusing it, so the client gets the status and not a broken pipe', async () => {
    service.faults.arm({ route: 'files.create', kind: 'error', status: 503, times: 1 });
    const big = chatLines(4000);
    await expect(upload(client, dir, big)).rejects.toMatchObject({ status: 503 });
    expect((await upload(client, dir, big)).bytes).toBeGreaterThan(500_000);
  });
});

describe('replies lost after the commit', () => {
  it('stores and records the first upload, then drops the connection instead of replying', async () => {
    service.faults.arm({ route: 'files.create', kind: 'lose', times: 1 });
    const name = 'lost-reply.jsonl';
    const error = await upload(client, dir, chatLines(5), name).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIConnectionError);
    const records = await service.records();
    expect(records.uploadsByFilename[name]).toBe(1);
    const stored = (await client.files.list()).data.filter((f) => f.filename === name);
    expect(stored).toHaveLength(1);
    // A naive retry makes a second copy: exactly what a client must look for before retrying.
    await upload(client, dir, chatLines(5), name);
    expect((await service.records()).uploadsByFilename[name]).toBe(2);
  });

  it('creates and records a batch, runs it, and loses the reply', async () => {
    const file = await upload(client, dir, chatLines(4));
    service.faults.arm({ route: 'batches.create', kind: 'lose', times: 1 });
    await expect(
      client.batches.create({ ...createParams(file.id), metadata: { ds_name: 'lost-create' } }),
    ).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
    const records = await service.records();
    expect(records.batchesByDsName['lost-create']).toBe(1);
    const found = (await client.batches.list()).data.filter((b) => b.metadata?.ds_name === 'lost-create');
    expect(found).toHaveLength(1);
    expect((await waitFor(client, found[0]!.id)).status).toBe('completed');
  });

  it('holds the reply past the client timeout (stall), the batch created all the same', async () => {
    const file = await upload(client, dir, chatLines(2));
    service.faults.arm({ route: 'batches.create', kind: 'stall', delayMs: 1500, times: 1 });
    const impatient = new OpenAI({ baseURL: service.url, apiKey: 'local', maxRetries: 0, timeout: 200 });
    await expect(
      impatient.batches.create({ ...createParams(file.id), metadata: { ds_name: 'stalled-create' } }),
    ).rejects.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect((await service.records()).batchesByDsName['stalled-create']).toBe(1);
  });

  it('cuts a download short after half its bytes', async () => {
    const batch = await waitFor(client, (await submit(client, dir, chatLines(300))).id);
    service.faults.arm({ route: 'files.content', kind: 'lose', times: 1 });
    await expect((await client.files.content(batch.output_file_id!)).text()).rejects.toThrow();
    const whole = await (await client.files.content(batch.output_file_id!)).text();
    expect(whole.split('\n').filter(Boolean)).toHaveLength(300);
    service.faults.arm({ route: 'files.content', kind: 'stall', delayMs: 1000, times: 1 });
    const impatient = new OpenAI({ baseURL: service.url, apiKey: 'local', maxRetries: 0, timeout: 150 });
    await expect(impatient.files.content(batch.output_file_id!)).rejects.toBeInstanceOf(
      OpenAI.APIConnectionTimeoutError,
    );
  });
});

describe('connections dropped and slow calls', () => {
  it('drops the connection before the call does anything (reset): nothing stored', async () => {
    service.faults.arm({ route: 'files.create', kind: 'reset', times: 1 });
    const name = 'reset-upload.jsonl';
    await expect(upload(client, dir, chatLines(3), name)).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
    expect((await service.records()).uploadsByFilename[name]).toBeUndefined();
  });

  it('delays a call by delayMs (slow)', async () => {
    service.faults.arm({ route: 'batches.list', kind: 'slow', delayMs: 150, times: 1 });
    const started = performance.now();
    await client.batches.list();
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });
});

describe('rates drawn from the seed', () => {
  async function pattern(seed: number): Promise<number[]> {
    const s = await startLocalService({
      seed,
      faults: [{ route: 'files.retrieve', kind: 'error', status: 500, rate: 0.3 }],
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 60; i++) statuses.push((await raw(s, '/v1/files/file-batch-none')).status);
      return statuses;
    } finally {
      await s.close();
    }
  }

  it('fires on the same calls for the same seed, on others for another, at about the rate', async () => {
    const a = await pattern(11);
    expect(await pattern(11)).toEqual(a);
    expect(await pattern(12)).not.toEqual(a);
    const share = a.filter((s) => s === 500).length / a.length;
    expect(share).toBeGreaterThan(0.12);
    expect(share).toBeLessThan(0.5);
    expect(a.every((s) => s === 500 || s === 404)).toBe(true);
  });
});

describe('the admin endpoint', () => {
  it('arms, lists and disarms faults over HTTP, and refuses a bad rule with 400', async () => {
    const armed = await raw(service, '/_batchpipe/faults', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        { route: 'batches.cancel', kind: 'error', status: 503, times: 1 },
        { route: 'embeddings', kind: 'slow', delayMs: 1 },
      ]),
    });
    expect(armed.status).toBe(200);
    const ids = (armed.body.data as Array<{ id: string }>).map((f) => f.id);
    expect(ids).toHaveLength(2);
    const listed = await raw(service, '/_batchpipe/faults');
    expect((listed.body.data as Array<{ id: string }>).map((f) => f.id)).toEqual(expect.arrayContaining(ids));
    expect((await raw(service, `/_batchpipe/faults/${ids[1]}`, { method: 'DELETE' })).body).toEqual({
      disarmed: 1,
    });
    expect((await raw(service, `/_batchpipe/faults/${ids[1]}`, { method: 'DELETE' })).status).toBe(404);
    const bad = await raw(service, '/_batchpipe/faults', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ route: 'files.create', kind: 'explode' }),
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_fault' });
    await raw(service, '/_batchpipe/faults', { method: 'DELETE' });
    expect(service.faults.list()).toEqual([]);
    const events = (listed.body.events as Array<{ route: string }>).map((e) => e.route);
    expect(events).toContain('batches.create');
  });

  it('never faults its own routes', async () => {
    service.faults.arm({ route: '*', kind: 'error', status: 500 });
    try {
      expect((await raw(service, '/_batchpipe/health')).status).toBe(200);
      expect((await raw(service, '/_batchpipe/records')).status).toBe(200);
      expect((await raw(service, '/v1/files')).status).toBe(500);
    } finally {
      service.faults.disarm();
    }
  });

  it('arms faults from options and refuses a bad one with BP_INVALID_OPTION', async () => {
    const s = await startLocalService({
      faults: [{ route: 'files.list', kind: 'error', status: 502, times: 1 }],
    });
    try {
      expect((await raw(s, '/v1/files')).status).toBe(502);
      expect((await raw(s, '/v1/files')).status).toBe(200);
      expect(() => s.faults.arm({ route: 'files.list', kind: 'error', status: 200 })).toThrow(
        /BP_INVALID_OPTION|status/,
      );
    } finally {
      await s.close();
    }
    await expect(
      startLocalService({ faults: [{ route: 'x', kind: 'nope' as 'error' }] }),
    ).rejects.toMatchObject({ code: 'BP_INVALID_OPTION' });
  });
});
