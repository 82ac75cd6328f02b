/**
 * Issue 12, item 1, at the local service: an upload that meets a full disk (its data dir on a real
 * 1 MB tmpfs) answers 507 with a message, stores nothing (no file listed, no bytes left in the data
 * dir), and the service goes on once there is room; its append-only logs stay readable after a
 * refused append.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppendLog } from '../../src/local/durable.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { tempDir } from '../helpers.js';
import { filesUnder, mountSmallDisk } from '../support/small-disk.js';
import { chatLines, clientFor, upload } from './support.js';

const disk = mountSmallDisk(1024 * 1024);
if (typeof disk === 'string') console.warn(`skipped the local service full-disk tests: ${disk}`);
const dir = tempDir('bp-local-full-');

describe.skipIf(typeof disk === 'string')('the local service on a full disk', () => {
  const small = disk as Exclude<typeof disk, string>;
  let service: LocalService;
  let client: OpenAI;
  beforeAll(async () => {
    service = await startLocalService({ dataDir: join(small.dir, 'service') });
    client = clientFor(service);
  });
  afterAll(async () => {
    await service?.close();
    small.unmount();
  });

  it('answers an upload larger than the room left with 507, and stores nothing', async () => {
    const before = filesUnder(join(small.dir, 'service')).filter((f) => f.startsWith('files/'));
    // About 2 MB of request lines: twice the whole disk.
    const lines = chatLines(6000, { seed: 7, body: { max_tokens: 64, metadata: { pad: 'p'.repeat(200) } } });
    const error = await upload(client, dir, lines).then(
      () => undefined,
      (e: unknown) => e as { status?: number; code?: string; message: string },
    );
    expect(error).toBeDefined();
    expect(error!.status).toBe(507);
    expect(error!.code).toBe('insufficient_storage');
    expect(error!.message).toContain('ENOSPC');
    expect((await client.files.list()).data).toEqual([]);
    expect(filesUnder(join(small.dir, 'service')).filter((f) => f.startsWith('files/'))).toEqual(before);
    expect(readdirSync(join(small.dir, 'service', 'tmp'))).toEqual([]);
    // The refused bytes were let go: an upload that fits is stored whole.
    const ok = await upload(client, dir, chatLines(50, { seed: 8 }));
    const stored = await client.files.content(ok.id);
    expect((await stored.text()).trimEnd().split('\n')).toHaveLength(50);
  });

  it('an append-only log refused mid-record keeps its records, and takes more once there is room', async () => {
    const path = join(small.dir, 'log.jsonl');
    const log = new AppendLog(path);
    await log.append({ n: 1 });
    await log.append({ n: 2 });
    small.fill(2048);
    await expect(log.append({ n: 3, pad: 'q'.repeat(64 * 1024) })).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(readFileSync(path, 'utf8')).toBe('{"n":1}\n{"n":2}\n');
    small.unfill();
    await log.append({ n: 4 });
    await log.close();
    expect(await AppendLog.read(path)).toEqual([{ n: 1 }, { n: 2 }, { n: 4 }]);
  });
});

describe.skipIf(typeof disk === 'string')('a batch whose results meet a full disk', () => {
  it('fails the batch with the reason, and stores no output file cut short', async () => {
    const other = mountSmallDisk(1024 * 1024) as Exclude<typeof disk, string>;
    const service = await startLocalService({ dataDir: join(other.dir, 'service') });
    try {
      const client = clientFor(service);
      // Fits as input (about 520 KB); its answers do not fit beside it.
      const lines = chatLines(1500, { seed: 9, body: { metadata: { pad: 'p'.repeat(200) } } });
      const file = await upload(client, dir, lines);
      let batch = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      for (let i = 0; i < 200 && !['completed', 'failed'].includes(batch.status); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        batch = await client.batches.retrieve(batch.id);
      }
      expect(batch.status).toBe('failed');
      expect(batch.errors?.data?.[0]?.message).toContain('ENOSPC');
      expect(batch.output_file_id ?? null).toBeNull();
      const stored = (await client.files.list()).data.map((f) => f.purpose);
      expect(stored).toEqual(['batch']);
    } finally {
      await service.close();
      other.unmount();
    }
  });
});
