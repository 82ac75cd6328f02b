/**
 * Durability: state lives in the data dir, so a service closed and started again on it carries on
 * where it was (a running batch resumes from its checkpoint; files, batches, results and records are
 * all still there), and the start-up refusals (a data dir in use, a port in use, bad options) are
 * clear errors with stable codes.
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type LocalService, type LocalServiceOptions, startLocalService } from '../../src/local/index.js';
import { tempDir } from '../helpers.js';
import { chatLines, clientFor, raw, resultIds, resultLines, submit, waitFor } from './support.js';

const root = tempDir('bp-local-restart-');

describe('restart on the same data dir', () => {
  it('resumes a running batch where it was, losing and repeating nothing', async () => {
    const options: LocalServiceOptions = {
      dataDir: join(root, 'a'),
      latencyMs: 5,
      concurrency: 4,
      checkpointMs: 20,
    };
    let service: LocalService = await startLocalService(options);
    let client = clientFor(service);
    const earlier = await waitFor(
      client,
      (await submit(client, root, chatLines(30, { prefix: 'early-' }))).id,
    );
    const created = await submit(client, root, chatLines(600), { metadata: { ds_name: 'survivor' } });
    const before = await waitFor(client, created.id, (b) => (b.request_counts?.completed ?? 0) >= 100);
    await service.close();

    service = await startLocalService(options);
    try {
      client = clientFor(service);
      const resumed = await client.batches.retrieve(created.id);
      expect(resumed.status).toBe('in_progress');
      // Counts come back from the checkpoint: nothing done before the restart is forgotten.
      expect(resumed.request_counts!.completed).toBeGreaterThanOrEqual(before.request_counts!.completed);
      expect(resumed.in_progress_at).toBe(before.in_progress_at);

      const batch = await waitFor(client, created.id);
      expect(batch.status).toBe('completed');
      expect(batch.request_counts).toEqual({ total: 600, completed: 600, failed: 0 });
      const ids = await resultIds(client, batch);
      expect(ids.size).toBe(600);
      expect([...ids.values()].every((n) => n === 1)).toBe(true);

      // What finished before the restart is all still there.
      expect((await client.batches.retrieve(earlier.id)).status).toBe('completed');
      expect(await resultLines(client, earlier.output_file_id)).toHaveLength(30);
      expect((await client.files.retrieve(created.input_file_id)).status).toBe('uploaded');
      const records = await service.records();
      expect(records.batchesByDsName).toEqual({ survivor: 1 });
      expect(records.calls.map((c) => c.op)).toEqual([
        'file.create',
        'batch.create',
        'file.create',
        'batch.create',
      ]);
      // The clock did not go back: a new batch is stamped no earlier than the old ones.
      const later = await submit(client, root, chatLines(2));
      expect(later.created_at).toBeGreaterThanOrEqual(created.created_at);
    } finally {
      await service.close();
    }
  });

  it('resumes a batch cancelled mid-run across a restart as cancelled, with what finished', async () => {
    const options: LocalServiceOptions = {
      dataDir: join(root, 'b'),
      latencyMs: 10,
      concurrency: 2,
      checkpointMs: 20,
    };
    let service = await startLocalService(options);
    let client = clientFor(service);
    const created = await submit(client, root, chatLines(400));
    await waitFor(client, created.id, (b) => (b.request_counts?.completed ?? 0) >= 20);
    await client.batches.cancel(created.id);
    await service.close();
    service = await startLocalService(options);
    try {
      client = clientFor(service);
      const batch = await waitFor(client, created.id);
      expect(batch.status).toBe('cancelled');
      const done = batch.request_counts!.completed;
      expect(done).toBeGreaterThanOrEqual(20);
      expect(await resultLines(client, batch.output_file_id)).toHaveLength(done);
    } finally {
      await service.close();
    }
  });

  it('does not count downtime on a scaled clock', async () => {
    const options: LocalServiceOptions = { dataDir: join(root, 'c'), timeScale: 3600 };
    let service = await startLocalService(options);
    const before = (await raw(service, '/_batchpipe/health')).body.now as number;
    await service.close();
    await new Promise((resolve) => setTimeout(resolve, 600));
    service = await startLocalService(options);
    const after = (await raw(service, '/_batchpipe/health')).body.now as number;
    await service.close();
    expect(after).toBeGreaterThanOrEqual(before);
    // 0.6 s down at 3600x would be 36 minutes: the clock resumed where it stopped instead.
    expect(after - before).toBeLessThan(600);
  });
});

describe('start-up refusals', () => {
  it('refuses a data dir another running service holds, and takes it once that one closed', async () => {
    const dataDir = join(root, 'd');
    const first = await startLocalService({ dataDir });
    await expect(startLocalService({ dataDir })).rejects.toMatchObject({
      code: 'BP_SERVICE_START',
      message: expect.stringContaining('in use'),
    });
    await first.close();
    const second = await startLocalService({ dataDir });
    await second.close();
  });

  it('refuses a port in use with BP_SERVICE_START', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      await expect(startLocalService({ port, dataDir: join(root, 'e') })).rejects.toMatchObject({
        code: 'BP_SERVICE_START',
      });
      // The data dir is released again.
      const ok = await startLocalService({ dataDir: join(root, 'e') });
      await ok.close();
    } finally {
      blocker.close();
    }
  });

  it('refuses bad options with BP_INVALID_OPTION naming the option', async () => {
    await expect(startLocalService({ profile: 'gemini' as 'openai' })).rejects.toMatchObject({
      code: 'BP_INVALID_OPTION',
      message: expect.stringContaining('profile'),
    });
    await expect(startLocalService({ timeScale: 0 })).rejects.toMatchObject({ code: 'BP_INVALID_OPTION' });
    await expect(startLocalService({ refuseRate: 2 })).rejects.toMatchObject({ code: 'BP_INVALID_OPTION' });
  });

  it('makes and removes its own temporary data dir when given none', async () => {
    const service = await startLocalService();
    expect(existsSync(service.dataDir)).toBe(true);
    await service.close();
    expect(existsSync(service.dataDir)).toBe(false);
    await service.close();
  });
});
