/**
 * The lifecycle the documents give: validating -> in_progress -> finalizing -> completed; expired when
 * the completion window passes; cancelling -> cancelled after in-flight requests finish; results
 * finished before a cancel or an expiry kept; null result file ids when there is nothing to put in them.
 */
import type { Batch } from 'openai/resources/batches';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { chatLines, expectSchema, resultIds, resultLines, serviceFor, submit, waitFor } from './support.js';

const dir = tempDir('bp-local-lifecycle-');
const { client } = await serviceFor();

function inputIds(count: number): Set<string> {
  return new Set(chatLines(count).map((l) => l.custom_id));
}

describe('completed', () => {
  it('stamps every step in order and keeps request counts', async () => {
    const batch = await waitFor(client, (await submit(client, dir, chatLines(50))).id);
    expect(batch.status).toBe('completed');
    const steps = [batch.created_at, batch.in_progress_at!, batch.finalizing_at!, batch.completed_at!];
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect([batch.failed_at, batch.expired_at, batch.cancelling_at, batch.cancelled_at]).toEqual([
      null,
      null,
      null,
      null,
    ]);
    expect(batch.request_counts).toEqual({ total: 50, completed: 50, failed: 0 });
  });

  it('has no error file when nothing failed, and no output file when nothing succeeded', async () => {
    const clean = await waitFor(client, (await submit(client, dir, chatLines(10))).id);
    expect(clean.output_file_id).toMatch(/^file-batch_output-/);
    expect(clean.error_file_id).toBeNull();
    const refused = await waitFor(
      client,
      (await submit(client, dir, chatLines(10), { metadata: { bp_refuse_rate: '1' } })).id,
    );
    expect(refused.status).toBe('completed');
    expect(refused.request_counts).toEqual({ total: 10, completed: 0, failed: 10 });
    expect(refused.output_file_id).toBeNull();
    expect(refused.error_file_id).toMatch(/^file-batch_error-/);
    expect(await resultLines(client, refused.error_file_id)).toHaveLength(10);
  });
});

describe('cancel', () => {
  it('goes cancelling -> cancelled after in-flight requests finish, keeping what finished', async () => {
    const { client: slow } = await serviceFor({ latencyMs: 20, concurrency: 2 });
    const created = await submit(slow, dir, chatLines(200));
    await waitFor(slow, created.id, (b) => (b.request_counts?.completed ?? 0) >= 10);
    const cancelling = await slow.batches.cancel(created.id);
    expectSchema('Batch', cancelling);
    expect(cancelling.status).toBe('cancelling');
    expect(typeof cancelling.cancelling_at).toBe('number');
    // Cancelling again while it winds down is not an error.
    expect((await slow.batches.cancel(created.id)).status).toMatch(/^cancell/);
    const batch = await waitFor(slow, created.id);
    expect(batch.status).toBe('cancelled');
    expect(batch.cancelled_at! >= batch.cancelling_at!).toBe(true);
    expect(batch.completed_at).toBeNull();
    const { completed, failed, total } = batch.request_counts!;
    expect(total).toBe(200);
    expect(completed).toBeGreaterThanOrEqual(10);
    expect(completed).toBeLessThan(200);
    expect(failed).toBe(0);
    const output = await resultLines(slow, batch.output_file_id);
    expect(output).toHaveLength(completed);
    const ids = await resultIds(slow, batch);
    expect([...ids.values()].every((n) => n === 1)).toBe(true);
    const sent = inputIds(200);
    expect([...ids.keys()].every((id) => sent.has(id))).toBe(true);
    // DashScope: unprocessed requests are terminated; nothing failed, so no error file.
    expect(batch.error_file_id).toBeNull();
    // A cancelled batch is terminal: cancelling it again is refused.
    await expect(slow.batches.cancel(created.id)).rejects.toMatchObject({ status: 400 });
  });

  it('cancels a batch still waiting to be validated without running a request', async () => {
    const { client: busy } = await serviceFor({ latencyMs: 20, concurrency: 1, maxActiveBatches: 1 });
    const running = await submit(busy, dir, chatLines(100));
    await waitFor(busy, running.id, (b) => b.status === 'in_progress');
    const queued = await submit(busy, dir, chatLines(5));
    expect((await busy.batches.retrieve(queued.id)).status).toBe('validating');
    expect((await busy.batches.cancel(queued.id)).status).toBe('cancelling');
    const batch = await waitFor(busy, queued.id);
    expect(batch.status).toBe('cancelled');
    expect(batch.in_progress_at).toBeNull();
    expect(batch.request_counts!.completed).toBe(0);
    expect([batch.output_file_id, batch.error_file_id]).toEqual([null, null]);
    await busy.batches.cancel(running.id);
    expect((await waitFor(busy, running.id)).status).toBe('cancelled');
  });

  it('takes knobs per batch from metadata (a slow batch beside fast ones)', async () => {
    const slow = await submit(client, dir, chatLines(100), { metadata: { bp_latency_ms: '500' } });
    const fast = await waitFor(client, (await submit(client, dir, chatLines(100))).id);
    expect(fast.status).toBe('completed');
    expect((await client.batches.retrieve(slow.id)).status).not.toBe('completed');
    await client.batches.cancel(slow.id);
    expect((await waitFor(client, slow.id)).status).toBe('cancelled');
  });
});

describe('expired', () => {
  // 24 hours pass in two real seconds; at 20 ms a request and 2 at a time, 300 requests need 3 s.
  // (In one second, a loaded machine once let the window close before the input was validated.)
  const options = { timeScale: 43_200, latencyMs: 20, concurrency: 2 };

  async function expire(profile: 'dashscope' | 'openai'): Promise<{ batch: Batch; client: typeof client }> {
    const { client: clock } = await serviceFor({ ...options, profile });
    const created = await submit(clock, dir, chatLines(300));
    expect(created.expires_at! - created.created_at).toBe(86_400);
    const batch = await waitFor(clock, created.id);
    expect(batch.status).toBe('expired');
    expect(typeof batch.expired_at).toBe('number');
    expect(batch.expired_at!).toBeGreaterThanOrEqual(batch.expires_at!);
    expect(batch.completed_at).toBeNull();
    const { completed, total } = batch.request_counts!;
    expect(total).toBe(300);
    expect(completed).toBeGreaterThan(0);
    expect(completed).toBeLessThan(300);
    // What finished before the window closed is kept.
    expect(await resultLines(clock, batch.output_file_id)).toHaveLength(completed);
    return { batch, client: clock };
  }

  it('DashScope: keeps the finished results and says nothing of the rest', async () => {
    const { batch, client: clock } = await expire('dashscope');
    expect(batch.error_file_id).toBeNull();
    const ids = await resultIds(clock, batch);
    expect(ids.size).toBe(batch.request_counts!.completed);
  });

  it('OpenAI: puts every request it did not run in the error file as batch_expired', async () => {
    const { batch, client: clock } = await expire('openai');
    const errors = await resultLines(clock, batch.error_file_id);
    expect(errors).toHaveLength(300 - batch.request_counts!.completed);
    for (const line of errors) {
      expectSchema('BatchRequestOutput', line);
      expect(line.response).toBeNull();
      expect(line.error).toMatchObject({ code: 'batch_expired' });
    }
    const ids = await resultIds(clock, batch);
    expect(ids.size).toBe(300);
    expect([...ids.values()].every((n) => n === 1)).toBe(true);
  });
});
