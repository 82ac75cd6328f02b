import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import {
  chatLines,
  contentOf,
  expectSchema,
  resultIds,
  resultLines,
  serviceFor,
  submit,
  upload,
  waitFor,
} from './support.js';

const dir = tempDir('bp-local-flow-');
// A share of refusals so the flow has an error file too (the provider's documents show both).
const { service, client } = await serviceFor({ refuseRate: 0.1, seed: 3 });

describe('the provider document flow, through the openai SDK', () => {
  it('uploads, creates, polls and downloads the output and error files', async () => {
    const lines = chatLines(300, { seed: 11 });
    // Step 1: upload (client.files.create(file=..., purpose="batch")).
    const file = await upload(client, dir, lines, 'input.jsonl');
    expect(file).toMatchObject({
      object: 'file',
      purpose: 'batch',
      status: 'uploaded',
      filename: 'input.jsonl',
    });
    expect(file.id).toMatch(/^file-batch-/);
    expectSchema('OpenAIFile', file);

    // Step 2: create, with the DashScope metadata fields.
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { ds_name: 'My batch job', ds_description: 'Weekly report' },
    });
    expect(created.status).toBe('validating');
    expect(created.id).toMatch(/^batch_/);
    expect(created.metadata).toEqual({ ds_name: 'My batch job', ds_description: 'Weekly report' });
    expect(created.expires_at! - created.created_at).toBe(24 * 3600);
    expectSchema('Batch', created);

    // Step 3: poll until a terminal status.
    const batch = await waitFor(client, created.id);
    expectSchema('Batch', batch);
    expect(batch.status).toBe('completed');
    expect(batch.model).toBe('qwen-plus');
    const counts = batch.request_counts!;
    expect(counts.total).toBe(300);
    expect(counts.completed + counts.failed).toBe(300);
    expect(counts.failed).toBeGreaterThan(10);
    expect(counts.failed).toBeLessThan(60);
    const stamps = [batch.created_at, batch.in_progress_at, batch.finalizing_at, batch.completed_at];
    expect(stamps.every((t) => typeof t === 'number')).toBe(true);
    expect([...stamps].sort()).toEqual(stamps);
    expect(batch.output_file_id).toMatch(/^file-batch_output-/);
    expect(batch.error_file_id).toMatch(/^file-batch_error-/);
    expect(batch.usage!.input_tokens).toBeGreaterThan(0);
    expect(batch.usage!.output_tokens).toBeGreaterThan(0);

    // Step 4: download both files; every line in OpenAI's output shape.
    const output = await resultLines(client, batch.output_file_id);
    const errors = await resultLines(client, batch.error_file_id);
    expect(output).toHaveLength(counts.completed);
    expect(errors).toHaveLength(counts.failed);
    for (const line of [...output, ...errors]) {
      expectSchema('BatchRequestOutput', line);
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.error).toBeNull();
    }
    for (const line of output) {
      expect(line.response!.status_code).toBe(200);
      expectSchema('CreateChatCompletionResponse', line.response!.body);
      expect(contentOf(line)).toContain('no inference');
    }
    for (const line of errors) {
      expect(line.response!.status_code).toBe(400);
      expectSchema('ErrorResponse', line.response!.body);
      expect(line.response!.body.error).toMatchObject({ code: 'data_inspection_failed' });
    }
    // The result files are files too.
    const outputFile = await client.files.retrieve(batch.output_file_id!);
    expectSchema('OpenAIFile', outputFile);
    expect(outputFile.purpose).toBe('batch_output');
  });

  it('brings every custom_id of the input back exactly once across output and error files', async () => {
    const lines = chatLines(1000, { seed: 12, prefix: 'k' });
    const batch = await waitFor(client, (await submit(client, dir, lines)).id);
    const ids = await resultIds(client, batch);
    expect(ids.size).toBe(1000);
    expect([...ids.values()].every((n) => n === 1)).toBe(true);
    for (const line of lines) expect(ids.get(line.custom_id)).toBe(1);
  });

  it('output order is not input order, yet every custom_id comes back once (the bug: results came back in input order)', async () => {
    // The providers: "Output order is not input order." A client that joins by position must fail here.
    const orderOf = async (svc: { client: typeof client }, lines: ReturnType<typeof chatLines>) => {
      const batch = await waitFor(svc.client, (await submit(svc.client, dir, lines)).id);
      const out = await resultLines(svc.client, batch.output_file_id);
      const err = await resultLines(svc.client, batch.error_file_id);
      return { out: out.map((l) => l.custom_id), err: err.map((l) => l.custom_id) };
    };
    const inputOrder = (ids: string[]) => [...ids].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
    // Answered inline (the fast path) and through the pool with latency, over several windows.
    for (const [name, options] of [
      ['inline', { seed: 7 }],
      ['pooled', { seed: 7, latencyMs: 1, concurrency: 8 }],
    ] as const) {
      const svc = await serviceFor({ ...options, refuseRate: 0.2 });
      const lines = chatLines(name === 'inline' ? 3000 : 300, { seed: 21, prefix: 'o' });
      const { out, err } = await orderOf(svc, lines);
      expect(out, name).not.toEqual(inputOrder(out));
      expect(err, name).not.toEqual(inputOrder(err));
      const all = [...out, ...err];
      expect(all).toHaveLength(lines.length);
      expect(new Set(all).size).toBe(lines.length);
      // The order is drawn from the seed: the same service seed, the same order.
      if (name === 'inline') {
        const again = await serviceFor({ ...options, refuseRate: 0.2 });
        expect(await orderOf(again, lines)).toEqual({ out, err });
        const other = await serviceFor({ seed: 8, refuseRate: 0.2 });
        expect((await orderOf(other, lines)).out).not.toEqual(out);
      }
    }
    // Even two lines do not come back in input order.
    const two = await orderOf(
      { client },
      chatLines(2, { seed: 3, prefix: 't', body: { metadata: { bp_refuse_rate: '0' } } }),
    );
    expect(two.out).toEqual(['t2', 't1']);
  });

  it('runs batches side by side and keeps their results apart', async () => {
    const batches = await Promise.all(
      [1, 2, 3, 4].map((n) => submit(client, dir, chatLines(200, { seed: n, prefix: `b${n}-` }))),
    );
    for (const [i, created] of batches.entries()) {
      const batch = await waitFor(client, created.id);
      const ids = await resultIds(client, batch);
      expect(ids.size).toBe(200);
      expect([...ids.keys()].every((id) => id.startsWith(`b${i + 1}-`))).toBe(true);
    }
  });

  it('answers the same request the same way every time (the test engine is deterministic)', async () => {
    const lines = chatLines(20, { seed: 5 });
    const first = await waitFor(client, (await submit(client, dir, lines)).id);
    const second = await waitFor(client, (await submit(client, dir, lines)).id);
    const byId = async (b: typeof first) =>
      new Map((await resultLines(client, b.output_file_id)).map((l) => [l.custom_id, contentOf(l)]));
    expect(await byId(second)).toEqual(await byId(first));
  });

  it('lists and retrieves what it stored in the spec shapes', async () => {
    const files = await client.files.list();
    expect(files.data.length).toBeGreaterThan(0);
    const page = await client.batches.list({ limit: 2 });
    expect(page.data).toHaveLength(2);
    expect(page.has_more).toBe(true);
    const raw = await (await fetch(`${service.url}/batches?limit=2`)).json();
    expectSchema('ListBatchesResponse', raw);
    const rawFiles = await (await fetch(`${service.url}/files`)).json();
    expectSchema('ListFilesResponse', rawFiles);
  });
});
