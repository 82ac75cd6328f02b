/**
 * DashScope's dry run: model batch-test-model with endpoint /v1/chat/ds-test checks a file's format
 * without inference, within 1 MB, 100 lines and 2 unfinished dry runs at once, and bills nothing
 * (ref/dashscope-batch-api.txt).
 */
import { describe, expect, it } from 'vitest';
import { startLocalService } from '../../src/local/index.js';
import { tempDir } from '../helpers.js';
import {
  chatLines,
  clientFor,
  contentOf,
  resultLines,
  serviceFor,
  submit,
  upload,
  waitFor,
} from './support.js';

const DRY = '/v1/chat/ds-test';
const dir = tempDir('bp-local-dry-run-');
const { client } = await serviceFor({ timeScale: 3600 });

function dryLines(count: number, options: { model?: string; prefix?: string } = {}) {
  return chatLines(count, { model: options.model ?? 'batch-test-model', prefix: options.prefix }).map(
    (line) => ({
      ...line,
      url: DRY,
    }),
  );
}

function dryRun(lines: readonly unknown[] | string, metadata?: Record<string, string>) {
  return submit(client, dir, lines, { endpoint: DRY as '/v1/chat/completions', metadata });
}

describe('the dry run', () => {
  it('checks every request without inference and bills nothing', async () => {
    const lines: unknown[] = dryLines(20);
    lines.push({ ...(lines[0] as object), custom_id: 'bad-body', body: { model: 'batch-test-model' } });
    const batch = await waitFor(client, (await dryRun(lines)).id);
    expect(batch.status).toBe('completed');
    expect(batch.endpoint).toBe(DRY);
    expect(batch.model).toBe('batch-test-model');
    expect(batch.request_counts).toEqual({ total: 21, completed: 20, failed: 1 });
    expect(batch.usage).toMatchObject({ input_tokens: 0, output_tokens: 0, total_tokens: 0 });
    const output = await resultLines(client, batch.output_file_id);
    expect(output).toHaveLength(20);
    expect(contentOf(output[0]!)).toContain('dry run');
    expect(output[0]!.response!.body.usage).toEqual({
      prompt_tokens: 0,
      completion_tokens: 0,
      total_tokens: 0,
    });
    const [bad] = await resultLines(client, batch.error_file_id);
    expect(bad).toMatchObject({ custom_id: 'bad-body', response: { status_code: 400 } });
  });

  it('fails a file over 100 lines or 1 MB at validation, as the documents limit it', async () => {
    const many = await waitFor(client, (await dryRun(dryLines(101))).id);
    expect(many.status).toBe('failed');
    expect(many.errors?.data?.[0]).toMatchObject({ code: 'too_many_lines', line: 101 });
    const exactly = await waitFor(client, (await dryRun(dryLines(100))).id);
    expect(exactly.status).toBe('completed');

    // About 1,020,000 bytes: over 1 MB read as 1,000,000 bytes, under 1 MiB.
    const big = dryLines(3).map((line) => ({
      ...line,
      body: { ...line.body, messages: [{ role: 'user', content: 'x'.repeat(340_000) }] },
    }));
    const large = await waitFor(client, (await dryRun(big)).id);
    expect(large.status).toBe('failed');
    expect(large.errors?.data?.[0]).toMatchObject({ code: 'file_too_large', line: null });
  });

  it('takes batch-test-model only, and batch-test-model only dry-runs', async () => {
    const other = await waitFor(client, (await dryRun(dryLines(3, { model: 'qwen-plus' }))).id);
    expect(other.status).toBe('failed');
    expect(other.errors?.data?.[0]).toMatchObject({ code: 'model_not_found', param: 'body.model' });
    const real = await waitFor(
      client,
      (await submit(client, dir, chatLines(3, { model: 'batch-test-model' }))).id,
    );
    expect(real.status).toBe('failed');
    expect(real.errors?.data?.[0]?.message).toContain(DRY);
    const mixed = [...dryLines(2), ...chatLines(1, { model: 'batch-test-model', prefix: 'x' })];
    const urls = await waitFor(client, (await dryRun(mixed)).id);
    expect(urls.errors?.data?.[0]).toMatchObject({ code: 'mismatched_endpoint', line: 3 });
  });

  it('allows 2 unfinished dry runs at once and refuses a third with 429', async () => {
    const s = await startLocalService({ latencyMs: 30, concurrency: 1 });
    try {
      const c = clientFor(s);
      const run = async () => {
        const file = await upload(c, dir, dryLines(10));
        return c.batches.create({
          input_file_id: file.id,
          endpoint: DRY as '/v1/chat/completions',
          completion_window: '24h',
        });
      };
      const first = await run();
      await run();
      await expect(run()).rejects.toMatchObject({ status: 429, code: 'dry_run_limit_exceeded' });
      // Other batches are not counted against it, nor it against them.
      expect((await submit(c, dir, chatLines(2))).status).toBe('validating');
      await c.batches.cancel(first.id);
      await waitFor(c, first.id);
      expect((await run()).status).toBe('validating');
    } finally {
      await s.close();
    }
  });

  it('is not offered with the openai profile', async () => {
    const s = await startLocalService({ profile: 'openai' });
    try {
      const c = clientFor(s);
      const file = await upload(c, dir, dryLines(2));
      await expect(
        c.batches.create({
          input_file_id: file.id,
          endpoint: DRY as '/v1/chat/completions',
          completion_window: '24h',
        }),
      ).rejects.toMatchObject({ status: 400, code: 'invalid_endpoint' });
    } finally {
      await s.close();
    }
  });
});
