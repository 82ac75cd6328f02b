/**
 * The upstream engine: each request of a batch forwarded to an OpenAI-compatible server, here a
 * second local service, with bounded concurrency, retries with backoff on 429/5xx and on no answer,
 * and per-line errors for what the upstream refuses. The upstream fails and recovers (errors, then a
 * restart with downtime) and the batch still answers every request exactly once. Keys are never
 * logged or written.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type LocalService, type LocalServiceOptions, startLocalService } from '../../src/local/index.js';
import { tempDir } from '../helpers.js';
import { chatLines, clientFor, contentOf, raw, resultIds, resultLines, submit, waitFor } from './support.js';

const dir = tempDir('bp-local-upstream-');

/** A front service whose engine is `upstream`, with quick retries. */
async function front(
  upstream: { url: string },
  options: Omit<LocalServiceOptions, 'upstream'> & {
    upstream?: Omit<NonNullable<LocalServiceOptions['upstream']>, 'url'>;
  } = {},
): Promise<LocalService> {
  const { upstream: extra, ...rest } = options;
  return startLocalService({
    timeScale: 3600,
    engine: 'upstream',
    upstream: { url: upstream.url, retries: 4, backoffMs: 5, maxBackoffMs: 50, ...extra },
    ...rest,
  });
}

/** Counts the chat calls a service receives (a rule with rate 0 never fires but counts). */
function countCalls(service: LocalService): () => number {
  const [rule] = service.faults.arm({ route: 'chat.completions', kind: 'error', rate: 0 });
  return () => service.faults.list().find((f) => f.id === rule!.id)!.seen;
}

describe('the upstream engine', () => {
  it("runs a batch's requests on the upstream and passes its answers and usage on", async () => {
    const upstream = await startLocalService({ seed: 4 });
    const calls = countCalls(upstream);
    const service = await front(upstream, { concurrency: 3 });
    try {
      const client = clientFor(service);
      const batch = await waitFor(client, (await submit(client, dir, chatLines(40))).id);
      expect(batch.status).toBe('completed');
      expect(batch.request_counts).toEqual({ total: 40, completed: 40, failed: 0 });
      expect(batch.usage!.input_tokens).toBeGreaterThan(0);
      expect(calls()).toBe(40);
      const [line] = await resultLines(client, batch.output_file_id);
      expect(contentOf(line!)).toContain('batchpipe-test-engine');
      // The same request asked of the upstream directly gets the same answer.
      const health = await raw(service, '/_batchpipe/health');
      expect(health.body.engine).toBe('upstream');
      const direct = await clientFor(service).chat.completions.create({
        model: 'qwen-plus',
        messages: [{ role: 'user', content: 'same' }],
      });
      const upstreamDirect = await clientFor(upstream).chat.completions.create({
        model: 'qwen-plus',
        messages: [{ role: 'user', content: 'same' }],
      });
      expect(direct.choices[0]!.message.content).toBe(upstreamDirect.choices[0]!.message.content);
    } finally {
      await service.close();
      await upstream.close();
    }
  });

  it('forwards embeddings batches too', async () => {
    const upstream = await startLocalService({});
    const service = await front(upstream);
    try {
      const client = clientFor(service);
      const lines = Array.from({ length: 5 }, (_, i) => ({
        custom_id: `e${i}`,
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'text-embedding-v4', input: `text ${i}`, dimensions: 8 },
      }));
      const batch = await waitFor(
        client,
        (await submit(client, dir, lines, { endpoint: '/v1/embeddings' })).id,
      );
      expect(batch.request_counts).toEqual({ total: 5, completed: 5, failed: 0 });
      const [line] = await resultLines(client, batch.output_file_id);
      expect((line!.response!.body.data as Array<{ embedding: number[] }>)[0]!.embedding).toHaveLength(8);
    } finally {
      await service.close();
      await upstream.close();
    }
  });

  it('retries an upstream that fails and recovers (429 with retry-after, 503, no answer)', async () => {
    const upstream = await startLocalService({});
    upstream.faults.arm([
      { route: 'chat.completions', kind: 'error', status: 503, times: 6 },
      { route: 'chat.completions', kind: 'error', status: 429, retryAfterMs: 5, times: 4 },
      { route: 'chat.completions', kind: 'reset', times: 3 },
    ]);
    const calls = countCalls(upstream);
    // 13 failing calls shared by 2 requests in flight: enough retries for the unluckiest one.
    const service = await front(upstream, { concurrency: 2, upstream: { retries: 14 } });
    try {
      const client = clientFor(service);
      const batch = await waitFor(client, (await submit(client, dir, chatLines(30))).id);
      expect(batch.request_counts).toEqual({ total: 30, completed: 30, failed: 0 });
      expect(calls()).toBe(30);
      const ids = await resultIds(client, batch);
      expect([...ids.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await service.close();
      await upstream.close();
    }
  });

  it('rides out an upstream that is down for a while, then finishes every request once', async () => {
    const upstream = await startLocalService({ latencyMs: 2 });
    const service = await front(upstream, {
      concurrency: 2,
      upstream: { retries: 10, backoffMs: 20, maxBackoffMs: 200 },
    });
    try {
      const client = clientFor(service);
      const created = await submit(client, dir, chatLines(120));
      await waitFor(client, created.id, (b) => (b.request_counts?.completed ?? 0) >= 10);
      await upstream.restart({ downMs: 400 });
      const batch = await waitFor(client, created.id);
      expect(batch.request_counts).toEqual({ total: 120, completed: 120, failed: 0 });
      expect((await resultIds(client, batch)).size).toBe(120);
    } finally {
      await service.close();
      await upstream.close();
    }
  });

  it('writes what the upstream refuses, or what fails past the retries, as the request’s error line', async () => {
    const upstream = await startLocalService({ refuseRate: 0.3, seed: 2 });
    const service = await front(upstream, { upstream: { retries: 1 } });
    try {
      const client = clientFor(service);
      const lines: unknown[] = chatLines(30);
      lines.push({
        custom_id: 'no-messages',
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'qwen-plus' },
      });
      const batch = await waitFor(client, (await submit(client, dir, lines)).id);
      const errors = await resultLines(client, batch.error_file_id);
      expect(errors.length).toBe(batch.request_counts!.failed);
      const codes = new Set(errors.map((l) => (l.response!.body.error as { code: string | null }).code));
      expect(codes).toContain('data_inspection_failed');
      const bad = errors.find((l) => l.custom_id === 'no-messages')!;
      expect(bad.response!.status_code).toBe(400);
      expect(JSON.stringify(bad.response!.body)).toContain('messages');

      upstream.faults.arm({ route: 'chat.completions', kind: 'error', status: 500 });
      const failing = await waitFor(client, (await submit(client, dir, chatLines(3, { prefix: 'x' }))).id);
      expect(failing.request_counts).toEqual({ total: 3, completed: 0, failed: 3 });
      const [line] = await resultLines(client, failing.error_file_id);
      expect(line!.response).toMatchObject({ status_code: 500, body: { error: { code: 'server_error' } } });
    } finally {
      await service.close();
      await upstream.close();
    }
  });

  it('answers 502 upstream_unavailable for an upstream that never answers', async () => {
    const gone = await startLocalService({});
    const url = gone.url;
    await gone.close();
    const service = await front({ url }, { upstream: { retries: 1 } });
    try {
      const client = clientFor(service);
      const batch = await waitFor(client, (await submit(client, dir, chatLines(2))).id);
      const [line] = await resultLines(client, batch.error_file_id);
      expect(line!.response).toMatchObject({
        status_code: 502,
        body: { error: { code: 'upstream_unavailable' } },
      });
    } finally {
      await service.close();
    }
  });

  it('sends the upstream key, and never logs or writes it', async () => {
    const key = 'sk-upstream-secret-93b1';
    const upstream = await startLocalService({ apiKey: key });
    const logLines: string[] = [];
    const service = await front(upstream, { upstream: { apiKey: key }, log: (line) => logLines.push(line) });
    const keyless = await front(upstream, { upstream: { retries: 0 } });
    try {
      const client = clientFor(service);
      const batch = await waitFor(client, (await submit(client, dir, chatLines(5))).id);
      expect(batch.request_counts!.completed).toBe(5);
      const refused = await waitFor(
        clientFor(keyless),
        (await submit(clientFor(keyless), dir, chatLines(1))).id,
      );
      const [line] = await resultLines(clientFor(keyless), refused.error_file_id);
      expect(line!.response!.status_code).toBe(401);
      expect(logLines.join('\n')).not.toContain(key);
      for (const file of allFiles(service.dataDir)) expect(readFileSync(file, 'latin1')).not.toContain(key);
    } finally {
      await service.close();
      await keyless.close();
      await upstream.close();
    }
  });

  it('refuses engine "upstream" without upstream.url', async () => {
    await expect(startLocalService({ engine: 'upstream' })).rejects.toMatchObject({
      code: 'BP_INVALID_OPTION',
    });
    await expect(
      startLocalService({ engine: 'upstream', upstream: { url: 'ftp://example' } }),
    ).rejects.toMatchObject({ code: 'BP_INVALID_OPTION' });
  });
});

function allFiles(root: string): string[] {
  return readdirSync(root).flatMap((name) => {
    const path = join(root, name);
    return statSync(path).isDirectory() ? allFiles(path) : [path];
  });
}
