/**
 * `POST /batches`, `GET /batches`, `POST /batches/{id}/cancel`: the create rules of each profile
 * (completion_window, endpoint, metadata), list paging and DashScope's filters, refusals as the
 * OpenAI API gives them (status, type, code, param) and as the SDK surfaces them.
 */
import OpenAI from 'openai';
import type { Batch } from 'openai/resources/batches';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { chatLines, expectSchema, raw, serviceFor, upload, waitFor } from './support.js';

const dir = tempDir('bp-local-batches-');
const { service, client } = await serviceFor();
const input = await upload(client, dir, chatLines(3));

/** What the SDK throws for a refused call: its status and the API error's code and param. */
async function refusal(
  call: Promise<unknown>,
): Promise<{ status: number; code: unknown; param: unknown; message: string }> {
  try {
    await call;
  } catch (error) {
    if (error instanceof OpenAI.APIError) {
      expect(error.requestID).toMatch(/^req_/);
      return { status: error.status ?? 0, code: error.code, param: error.param, message: error.message };
    }
    throw error;
  }
  throw new Error('expected the call to be refused');
}

function create(params: Partial<OpenAI.Batches.BatchCreateParams>, using: OpenAI = client) {
  return using.batches.create({
    input_file_id: input.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    ...params,
  });
}

async function postBatch(body: unknown) {
  return raw(service, '/v1/batches', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('completion_window', () => {
  it('DashScope takes 24h to 336h, in hours as the API shows', async () => {
    for (const window of ['24h', '72h', '336h']) {
      const batch = await create({ completion_window: window as '24h' });
      expect(batch.completion_window).toBe(window);
      expect(batch.expires_at! - batch.created_at).toBe(Number.parseInt(window, 10) * 3600);
    }
  });

  it('DashScope refuses anything else with a 400 naming the allowed values', async () => {
    for (const window of ['23h', '337h', '14d', '24', '1.5h', '0h']) {
      const refused = await refusal(create({ completion_window: window as '24h' }));
      expect(refused.status).toBe(400);
      expect(refused.param).toBe('completion_window');
      expect(refused.message).toContain('"24h" to "336h"');
    }
    expect((await refusal(create({ completion_window: '14d' as '24h' }))).message).toContain('336h');
  });

  it('refuses a window written other than canonically, such as "0024h" (the bug: leading zeros passed)', async () => {
    for (const window of ['0024h', '024h', '048h', '00336h', ' 24h', '24H']) {
      const refused = await refusal(create({ completion_window: window as '24h' }));
      expect(refused, window).toMatchObject({ status: 400, param: 'completion_window' });
    }
  });

  it('OpenAI takes 24h only', async () => {
    const { client: openai } = await serviceFor({ profile: 'openai' });
    const file = await upload(openai, dir, chatLines(2));
    const ok = await create({ input_file_id: file.id }, openai);
    expect(ok.status).toBe('validating');
    const refused = await refusal(
      create({ input_file_id: file.id, completion_window: '48h' as '24h' }, openai),
    );
    expect(refused).toMatchObject({
      status: 400,
      param: 'completion_window',
      code: 'invalid_completion_window',
    });
    expect(refused.message).toContain('"24h"');
  });
});

describe('the other create fields', () => {
  it('refuses an endpoint that is not a batch endpoint', async () => {
    const refused = await refusal(create({ endpoint: '/v1/chat/complete' as '/v1/chat/completions' }));
    expect(refused).toMatchObject({ status: 400, param: 'endpoint', code: 'invalid_endpoint' });
  });

  it('says so when the provider offers an endpoint this service does not answer', async () => {
    const { client: openai } = await serviceFor({ profile: 'openai' });
    const file = await upload(openai, dir, chatLines(2));
    const refused = await refusal(create({ input_file_id: file.id, endpoint: '/v1/responses' }, openai));
    expect(refused).toMatchObject({ status: 400, param: 'endpoint', code: 'unsupported_endpoint' });
  });

  it('refuses a missing or unknown input file, and a result file as input', async () => {
    expect(await refusal(create({ input_file_id: 'file-batch-nope' }))).toMatchObject({
      status: 400,
      param: 'input_file_id',
    });
    const done = await waitFor(client, (await create({})).id);
    expect(await refusal(create({ input_file_id: done.output_file_id! }))).toMatchObject({
      status: 400,
      param: 'input_file_id',
    });
    const missing = await postBatch({ endpoint: '/v1/chat/completions', completion_window: '24h' });
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({
      error: {
        message: "Missing required parameter: 'input_file_id'.",
        type: 'invalid_request_error',
        param: 'input_file_id',
        code: null,
      },
    });
  });

  it('refuses arguments the API does not know', async () => {
    const res = await postBatch({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      model: 'qwen-plus',
    });
    expect(res.status).toBe(400);
    expectSchema('ErrorResponse', res.body);
    expect((res.body.error as { message: string }).message).toBe(
      'Unrecognized request argument supplied: model',
    );
  });

  it('DashScope metadata: ds_name up to 100 and ds_description up to 200 characters, custom fields of any length', async () => {
    const ok = await create({
      metadata: { ds_name: 'n'.repeat(100), ds_description: 'd'.repeat(200), long_id: 'x'.repeat(5000) },
    });
    expect(ok.metadata!.long_id).toHaveLength(5000);
    // Characters, not bytes: 100 CJK characters are 300 bytes and still fit.
    expect((await create({ metadata: { ds_name: '批'.repeat(100) } })).metadata!.ds_name).toHaveLength(100);
    expect(await refusal(create({ metadata: { ds_name: 'n'.repeat(101) } }))).toMatchObject({
      status: 400,
      param: 'metadata.ds_name',
      code: 'invalid_metadata',
    });
    expect(await refusal(create({ metadata: { ds_description: 'd'.repeat(201) } }))).toMatchObject({
      status: 400,
      param: 'metadata.ds_description',
    });
    const notString = await postBatch({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { ds_name: 5 },
    });
    expect(notString.status).toBe(400);
  });

  it('OpenAI metadata: at most 16 pairs, values up to 512 characters', async () => {
    const { client: openai } = await serviceFor({ profile: 'openai' });
    const file = await upload(openai, dir, chatLines(2));
    const pairs = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    expect((await create({ input_file_id: file.id, metadata: pairs(16) }, openai)).status).toBe('validating');
    expect((await refusal(create({ input_file_id: file.id, metadata: pairs(17) }, openai))).status).toBe(400);
    expect(
      (await refusal(create({ input_file_id: file.id, metadata: { k: 'v'.repeat(513) } }, openai))).param,
    ).toBe('metadata.k');
  });

  it('refuses knobs it cannot read', async () => {
    expect(await refusal(create({ metadata: { bp_refuse_rate: '2' } }))).toMatchObject({
      status: 400,
      param: 'metadata.bp_refuse_rate',
    });
    expect(await refusal(create({ metadata: { bp_latency_ms: 'soon' } }))).toMatchObject({
      param: 'metadata.bp_latency_ms',
    });
  });
});

describe('cancel', () => {
  it('refuses to cancel a finished batch with a 400, as OpenAI does', async () => {
    const done = await waitFor(client, (await create({})).id);
    expect(done.status).toBe('completed');
    const refused = await refusal(client.batches.cancel(done.id));
    expect(refused).toMatchObject({ status: 400, code: 'batch_not_cancellable' });
    expect(refused.message).toContain('completed');
    expect((await client.batches.retrieve(done.id)).status).toBe('completed');
  });

  it('answers 404 for a batch it does not have', async () => {
    expect((await refusal(client.batches.cancel('batch_missing'))).status).toBe(404);
    expect((await refusal(client.batches.retrieve('batch_missing'))).status).toBe(404);
  });
});

describe('list', () => {
  it('pages newest first with limit, after and has_more', async () => {
    const { client: fresh } = await serviceFor();
    const file = await upload(fresh, dir, chatLines(2));
    const made: Batch[] = [];
    for (let i = 0; i < 5; i++) made.push(await create({ input_file_id: file.id }, fresh));
    const first = await fresh.batches.list({ limit: 2 });
    expect(first.data.map((b) => b.id)).toEqual([made[4]!.id, made[3]!.id]);
    expect(first.has_more).toBe(true);
    const second = await fresh.batches.list({ limit: 2, after: first.data[1]!.id });
    expect(second.data.map((b) => b.id)).toEqual([made[2]!.id, made[1]!.id]);
    const all: string[] = [];
    for await (const batch of fresh.batches.list({ limit: 2 })) all.push(batch.id);
    expect(all).toEqual(made.map((b) => b.id).reverse());
    const res = await raw(service, '/v1/batches?limit=0');
    expect(res.status).toBe(400);
    expect((await raw(service, '/v1/batches?limit=101')).status).toBe(400);
  });

  it("DashScope's filters: ds_name (fuzzy), input_file_ids, status, create_after/create_before", async () => {
    const { client: fresh, service: svc } = await serviceFor();
    const a = await upload(fresh, dir, chatLines(2));
    const b = await upload(fresh, dir, chatLines(2));
    const alpha = await create({ input_file_id: a.id, metadata: { ds_name: 'Alpha Weekly' } }, fresh);
    const alpha2 = await create({ input_file_id: b.id, metadata: { ds_name: 'alpha-2' } }, fresh);
    const beta = await create({ input_file_id: b.id, metadata: { ds_name: 'Beta' } }, fresh);
    await waitFor(fresh, beta.id);
    const ids = async (query: string) => {
      const res = await raw(svc, `/v1/batches?${query}`);
      expect(res.status).toBe(200);
      return (res.body.data as Batch[]).map((x) => x.id).sort();
    };
    expect(await ids('ds_name=ALPHA')).toEqual([alpha.id, alpha2.id].sort());
    expect(await ids('ds_name=weekly')).toEqual([alpha.id]);
    expect(await ids(`input_file_ids=${b.id}`)).toEqual([alpha2.id, beta.id].sort());
    expect(await ids(`input_file_ids=${a.id},${b.id}`)).toHaveLength(3);
    expect(await ids(`input_file_ids=${a.id}&ds_name=beta`)).toEqual([]);
    const tooMany = Array.from({ length: 21 }, (_, i) => `file-batch-${i}`).join(',');
    expect((await raw(svc, `/v1/batches?input_file_ids=${tooMany}`)).status).toBe(400);
    const statuses = await fresh.batches.list();
    const completed = statuses.data.filter((x) => x.status === 'completed').map((x) => x.id);
    expect(await ids('status=completed')).toEqual(completed.sort());
    expect(await ids('status=completed,failed,validating,in_progress')).toHaveLength(3);
    expect((await raw(svc, '/v1/batches?status=done')).status).toBe(400);
    // The SDK passes the filters through as query parameters too.
    const viaSdk = await fresh.batches.list({ ds_name: 'beta' } as OpenAI.Batches.BatchListParams);
    expect(viaSdk.data.map((x) => x.id)).toEqual([beta.id]);

    const stamp = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\D/g, '').slice(0, 14);
    const created = alpha.created_at;
    expect(await ids(`create_after=${stamp(created)}&ds_name=alpha`)).toEqual([alpha.id, alpha2.id].sort());
    expect(await ids(`create_before=${stamp(created - 1)}`)).toEqual([]);
    expect(await ids(`create_after=${stamp(created + 3600)}`)).toEqual([]);
    for (const bad of ['2025-01-01', '20250231000000', '20250101246000', 'yesterday']) {
      const res = await raw(svc, `/v1/batches?create_after=${bad}`);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ param: 'create_after', code: 'invalid_time' });
    }
  });

  it('lists only batches from the last 30 days (on the service clock); older ones can still be retrieved', async () => {
    // 30 days pass in 2 real seconds.
    const { client: fast } = await serviceFor({ timeScale: (30 * 86_400) / 2 });
    const file = await upload(fast, dir, chatLines(2));
    const old = await create({ input_file_id: file.id }, fast);
    expect((await fast.batches.list()).data.map((b) => b.id)).toEqual([old.id]);
    await new Promise((resolve) => setTimeout(resolve, 2200));
    const recent = await create({ input_file_id: file.id }, fast);
    expect((await fast.batches.list()).data.map((b) => b.id)).toEqual([recent.id]);
    expect((await fast.batches.retrieve(old.id)).id).toBe(old.id);
  });

  it('OpenAI lists everything and has no DashScope filters', async () => {
    const { client: openai, service: svc } = await serviceFor({ profile: 'openai' });
    const file = await upload(openai, dir, chatLines(2));
    await create({ input_file_id: file.id, metadata: { ds_name: 'x' } }, openai);
    await create({ input_file_id: file.id }, openai);
    const res = await raw(svc, '/v1/batches?ds_name=nothing-matches&status=bogus');
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(2);
  });
});
