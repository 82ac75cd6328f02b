/**
 * The account limits DashScope documents, emulated: create, query and cancel 1,000/min, list
 * 100/min (429 `rate_limit_exceeded` with retry-after), at most 1,000 unfinished batches (429
 * `concurrent_batch_limit_exceeded`), 10,000 files / 100 GB of storage with result files counted
 * (400 `storage_quota_exceeded`). Tests use small numbers and a short window.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { type LocalServiceOptions, startLocalService } from '../../src/local/index.js';
import { parseServiceOptions } from '../../src/local/options.js';
import { PROFILES } from '../../src/providers/profiles.js';
import { tempDir } from '../helpers.js';
import { chatLines, clientFor, raw, submit, upload, waitFor } from './support.js';

const dir = tempDir('bp-local-quotas-');

async function withService<T>(
  options: LocalServiceOptions,
  body: (service: Awaited<ReturnType<typeof startLocalService>>, client: OpenAI) => Promise<T>,
): Promise<T> {
  const service = await startLocalService(options);
  try {
    return await body(service, clientFor(service));
  } finally {
    await service.close();
  }
}

describe('call rates', () => {
  it('refuses the call over the rate with 429 and a retry-after that is enough', async () => {
    await withService({ quotas: { createRate: 3, rateWindowMs: 1500 } }, async (_service, client) => {
      const file = await upload(client, dir, chatLines(2));
      const params = {
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      } as const;
      for (let i = 0; i < 3; i++) await client.batches.create(params);
      const refused = await client.batches.create(params).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
      expect(refused).toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
      const wait = Number((refused as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after-ms'));
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(1500);
      expect((refused as Error).message).toContain('at most 3 batch creates');
      await sleep(wait + 5);
      expect((await client.batches.create(params)).status).toBe('validating');
    });
  });

  it('counts query, list and cancel apart, and leaves files and inference alone', async () => {
    await withService(
      { quotas: { queryRate: 2, listRate: 1, cancelRate: 1, rateWindowMs: 60_000 }, latencyMs: 20 },
      async (service, client) => {
        const batch = await submit(client, dir, chatLines(50));
        expect((await raw(service, '/v1/batches')).status).toBe(200);
        expect((await raw(service, '/v1/batches')).status).toBe(429);
        expect((await raw(service, `/v1/batches/${batch.id}`)).status).toBe(200);
        expect((await raw(service, `/v1/batches/${batch.id}`)).status).toBe(200);
        const third = await raw(service, `/v1/batches/${batch.id}`);
        expect(third.status).toBe(429);
        expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
        expect((await raw(service, `/v1/batches/${batch.id}/cancel`, { method: 'POST' })).status).toBe(200);
        expect((await raw(service, `/v1/batches/${batch.id}/cancel`, { method: 'POST' })).status).toBe(429);
        for (let i = 0; i < 5; i++) expect((await raw(service, '/v1/files')).status).toBe(200);
      },
    );
  });

  it('keeps the documented rates by default with the dashscope profile: the 101st list in a minute waits', async () => {
    await withService({}, async (service) => {
      for (let i = 0; i < 100; i++) expect((await raw(service, '/v1/batches')).status).toBe(200);
      const refused = await raw(service, '/v1/batches');
      expect(refused.status).toBe(429);
      expect(String((refused.body.error as { message: string }).message)).toContain(
        '100 batch lists per 1 min',
      );
    });
  });

  it('runs the window on the service clock, as every documented duration', async () => {
    // A service minute is 500 real ms at timeScale 120.
    await withService({ timeScale: 120, quotas: { listRate: 1 } }, async (service) => {
      expect((await raw(service, '/v1/batches')).status).toBe(200);
      const refused = await raw(service, '/v1/batches');
      expect(refused.status).toBe(429);
      const wait = Number(refused.headers.get('retry-after-ms'));
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(500);
      await sleep(wait + 10);
      expect((await raw(service, '/v1/batches')).status).toBe(200);
    });
  });

  it('is off by default with the openai profile, and on when asked', async () => {
    await withService({ profile: 'openai', quotas: { listRate: 1 } }, async (service) => {
      for (let i = 0; i < 3; i++) expect((await raw(service, '/v1/batches')).status).toBe(200);
    });
    await withService({ profile: 'openai', quotas: { enabled: true, listRate: 1 } }, async (service) => {
      expect((await raw(service, '/v1/batches')).status).toBe(200);
      expect((await raw(service, '/v1/batches')).status).toBe(429);
    });
    await withService({ quotas: { enabled: false, listRate: 1 } }, async (service) => {
      for (let i = 0; i < 3; i++) expect((await raw(service, '/v1/batches')).status).toBe(200);
    });
  });
});

describe('unfinished batches', () => {
  it('refuses a create over the cap with 429 until one finishes or is cancelled', async () => {
    await withService(
      { latencyMs: 20, concurrency: 1, quotas: { maxUnfinishedBatches: 2 } },
      async (_service, client) => {
        const a = await submit(client, dir, chatLines(100));
        await submit(client, dir, chatLines(100));
        const refused = await submit(client, dir, chatLines(2)).catch((e: unknown) => e);
        expect(refused).toMatchObject({ status: 429, code: 'concurrent_batch_limit_exceeded' });
        await client.batches.cancel(a.id);
        await waitFor(client, a.id);
        expect((await submit(client, dir, chatLines(2))).status).toBe('validating');
      },
    );
  });

  it('counts creates in flight, so parallel creates cannot overshoot', async () => {
    await withService({ quotas: { maxUnfinishedBatches: 3 }, latencyMs: 50 }, async (service, client) => {
      const file = await upload(client, dir, chatLines(20));
      const params = {
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      } as const;
      const outcomes = await Promise.allSettled(
        Array.from({ length: 8 }, () => client.batches.create(params)),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
      expect((await service.records()).batchesByInputFile[file.id]).toBe(3);
    });
  });
});

describe('storage', () => {
  // ref/dashscope-batch-api.txt: "File storage: 10,000 files / 100 GB per account." Read as 100 x 10^9
  // bytes by the service and by the client's profiles alike (it read 100 GiB, 7% more, before).
  it("defaults to 10,000 files and 100 x 10^9 bytes, the client profiles' reading", () => {
    const config = parseServiceOptions({});
    expect(config.quotas.maxFiles).toBe(10_000);
    expect(config.quotas.maxStorageBytes).toBe(100_000_000_000);
    for (const name of ['dashscope', 'dashscope-cn'] as const)
      expect(PROFILES[name].storage).toEqual({ maxFiles: 10_000, maxBytes: config.quotas.maxStorageBytes });
  });

  it('counts result files, refuses the upload over the file count with 400, and frees space on delete', async () => {
    await withService({ quotas: { maxFiles: 3 } }, async (_service, client) => {
      const batch = await waitFor(
        client,
        (await submit(client, dir, chatLines(5, { body: { metadata: { bp_refuse_rate: '0.5' } } }))).id,
      );
      expect(batch.output_file_id).not.toBeNull();
      expect(batch.error_file_id).not.toBeNull();
      const refused = await upload(client, dir, chatLines(1)).catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 400, code: 'storage_quota_exceeded' });
      expect((await client.files.list()).data).toHaveLength(3);
      await client.files.delete(batch.error_file_id!);
      expect((await upload(client, dir, chatLines(1))).status).toBe('uploaded');
    });
  });

  it('refuses the upload that would pass the byte quota, and parallel uploads cannot overshoot', async () => {
    await withService({ quotas: { maxStorageBytes: 3000, maxFiles: 4 } }, async (_service, client) => {
      const lines = chatLines(5);
      const size = (await upload(client, dir, lines)).bytes;
      expect(size).toBeGreaterThan(600);
      const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => upload(client, dir, lines)));
      const stored = outcomes.filter((o) => o.status === 'fulfilled').length;
      expect(stored).toBe(Math.min(3, Math.floor(3000 / size) - 1));
      for (const o of outcomes)
        if (o.status === 'rejected')
          expect(o.reason).toMatchObject({ status: 400, code: 'storage_quota_exceeded' });
      const total = (await client.files.list()).data.reduce((sum, f) => sum + f.bytes, 0);
      expect(total).toBeLessThanOrEqual(3000);
    });
  });
});
