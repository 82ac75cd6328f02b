/**
 * How the sink finds again what it may already have done (an upload or a create whose reply was
 * lost): never by guessing, never twice, matched exactly, paged within the list rate and only as far
 * back as the call's intent. Everything against the local service over HTTP, with its faults.
 */
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import OpenAI, { toFile } from 'openai';
import { describe, expect, it } from 'vitest';
import { type LocalService, type LocalServiceOptions, startLocalService } from '../../src/local/index.js';
import { type RunManifest, readManifest } from '../../src/run/manifest.js';
import type { ResultLine } from '../../src/run/run-results.js';
import { type BatchSinkOptions, batchSink } from '../../src/sinks/batch-sink.js';
import { toRequests } from '../../src/transforms/to-requests.js';
import { tempDir, textRows } from '../helpers.js';

const root = tempDir('bp-lookups-');
let runs = 0;

/** The sink's whole pipeline on `count` rows; the same `prefix` and `runsDir` resume the same run. */
async function runSink(
  service: LocalService,
  runsDir: string,
  prefix: string,
  count: number,
  options: Partial<BatchSinkOptions> = {},
) {
  const sink = batchSink({
    baseURL: service.url,
    provider: 'local',
    runsDir,
    pollInterval: 0.05,
    maxLinesPerFile: 10,
    ...options,
  });
  const out: ResultLine[] = [];
  await pipeline(
    Readable.from(textRows(count, prefix)),
    toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
    sink,
    async (source: AsyncIterable<ResultLine>) => {
      for await (const item of source) out.push(item);
    },
  );
  return { out, manifest: await readManifest(sink.runDir!), runDir: sink.runDir! };
}

async function withService<T>(
  options: LocalServiceOptions,
  body: (service: LocalService) => Promise<T>,
): Promise<T> {
  const service = await startLocalService({ timeScale: 36_000, ...options });
  try {
    return await body(service);
  } finally {
    await service.close();
  }
}

/** The only run under a runs dir, read from its manifest (after a run that failed). */
async function onlyManifest(runsDir: string): Promise<{ dir: string; manifest: RunManifest }> {
  const { readdirSync } = await import('node:fs');
  const name = readdirSync(runsDir).find((d) => d.startsWith('run-'))!;
  return { dir: join(runsDir, name), manifest: await readManifest(join(runsDir, name)) };
}

async function expectEachOnce(
  service: LocalService,
  manifest: RunManifest,
  out: ResultLine[],
  count: number,
) {
  expect(out.map((o) => o.custom_id).sort()).toEqual(
    textRows(count, out[0]!.custom_id.replace(/\d+$/, ''))
      .map((r) => r.values.id)
      .sort(),
  );
  expect(out.every((o) => !o.error)).toBe(true);
  const records = await service.records();
  for (const job of manifest.jobs) {
    expect(records.uploadsByFilename[job.file_name], job.file_name).toBe(1);
    expect(records.batchesByInputFile[job.input_file_id!], job.id).toBe(1);
  }
}

const clientFor = (service: LocalService) =>
  new OpenAI({ baseURL: service.url, apiKey: 'local', maxRetries: 0 });

/** A one-line request file at the service, for decoy batches. */
async function decoyFile(client: OpenAI): Promise<string> {
  const line = JSON.stringify({
    custom_id: 'decoy',
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] },
  });
  const file = await client.files.create({
    file: await toFile(Buffer.from(`${line}\n`), 'decoy.jsonl'),
    purpose: 'batch',
  });
  return file.id;
}

/** `count` batches on one decoy file, without metadata, a few creates at a time. */
async function decoyBatches(service: LocalService, count: number): Promise<void> {
  const client = clientFor(service);
  const file = await decoyFile(client);
  let left = count;
  const worker = async () => {
    while (left-- > 0)
      await client.batches.create({
        input_file_id: file,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

describe('batchSink looking for a call whose reply was lost', () => {
  it('never creates a batch again after a lookup that failed (bug: a failed list call led to a second create)', async () => {
    await withService({}, async (service) => {
      service.faults.arm([
        { route: 'batches.create', kind: 'lose', times: 1 },
        { route: 'batches.list', kind: 'error', status: 503, times: 8, retryAfterMs: 20 },
      ]);
      const { out, manifest } = await runSink(service, join(root, `runs-${++runs}`), 'lc-', 20);
      await expectEachOnce(service, manifest, out, 20);
      const list = service.faults.list().find((f) => f.route === 'batches.list')!;
      expect(list.fired).toBe(8);
    });
  });

  it('never uploads a file again after a lookup that failed (bug: a failed list call led to a second upload)', async () => {
    await withService({}, async (service) => {
      service.faults.arm([
        { route: 'files.create', kind: 'lose', times: 1 },
        { route: 'files.list', kind: 'error', status: 503, times: 8, retryAfterMs: 20 },
      ]);
      const { out, manifest } = await runSink(service, join(root, `runs-${++runs}`), 'lu-', 20);
      await expectEachOnce(service, manifest, out, 20);
      expect(service.faults.list().find((f) => f.route === 'files.list')!.fired).toBe(8);
    });
  });

  it('stops with BP_LOOKUP_FAILED when lookups get no answer, keeps the intent, and adopts the batch on resume', async () => {
    await withService({}, async (service) => {
      const runsDir = join(root, `runs-${++runs}`);
      service.faults.arm([
        { route: 'batches.create', kind: 'lose', times: 1 },
        // After the new run's one look for an earlier run's batches: the lost create's lookup fails.
        { route: 'batches.list', kind: 'error', status: 503, retryAfterMs: 5, after: 1 },
      ]);
      const error = await runSink(service, runsDir, 'lf-', 20).catch((e: unknown) => e);
      expect(error).toMatchObject({
        code: 'BP_LOOKUP_FAILED',
        message: expect.stringMatching(/resume looks again/),
      });
      const { manifest } = await onlyManifest(runsDir);
      const pending = manifest.jobs.filter((j) => j.state === 'creating');
      expect(pending).toHaveLength(1);
      expect((await service.records()).batchesByDsName[pending[0]!.ds_name]).toBe(1);

      service.faults.disarm();
      const resumed = await runSink(service, runsDir, 'lf-', 20);
      await expectEachOnce(service, resumed.manifest, resumed.out, 20);
    });
  });
});

describe('batchSink waiting for a call the provider may still be committing', () => {
  it('does not create a batch twice when a create times out while the provider is still committing it (bug: the lookup right after the timeout missed it)', async () => {
    await withService({}, async (service) => {
      const runsDir = join(root, `runs-${++runs}`);
      // The provider takes 2.5 s to act on the create; the client gives up after 1 s.
      service.faults.arm([{ route: 'batches.create', kind: 'late', delayMs: 2500, times: 1 }]);
      const { out, manifest } = await runSink(service, runsDir, 'st-', 10, {
        requestTimeout: 1,
        lookupDelay: 4,
      });
      await expectEachOnce(service, manifest, out, 10);
      expect(manifest.jobs[0]!.calls.create).toBe(1);
    });
  });
});

describe('batchSink lookups match exactly and page as far as they must', () => {
  it('adopts only its own batch among decoys the fuzzy ds_name filter returns (bug: a batch without metadata was adopted)', async () => {
    await withService({}, async (service) => {
      const runsDir = join(root, `runs-${++runs}`);
      service.faults.arm([
        { route: 'batches.create', kind: 'lose', times: 1 },
        // After the new run's one look for an earlier run's batches: the lost create's lookup fails.
        { route: 'batches.list', kind: 'error', status: 503, retryAfterMs: 5, after: 1 },
      ]);
      await runSink(service, runsDir, 'ld-', 10).catch(() => undefined);
      const { manifest } = await onlyManifest(runsDir);
      const job = manifest.jobs[0]!;
      expect(job.state).toBe('creating');
      const ours = (await service.records()).calls.find(
        (c) => c.op === 'batch.create' && c.ds_name === job.ds_name,
      )!;

      // Newer than ours, on the same input file, each wrong in one way; more than a page of them.
      const client = clientFor(service);
      const tag = { ds_name: job.ds_name, bp_run: manifest.run_id, bp_job: job.id };
      const decoys: Array<Record<string, string> | undefined> = [
        undefined,
        { ds_name: job.ds_name },
        { ...tag, bp_job: 'requests-00002-a1' },
        { ...tag, bp_run: 'run-0000000000000000' },
        { ...tag, ds_name: `x${job.ds_name}` },
        ...Array.from({ length: 120 }, (_, i) => ({ ...tag, ds_name: `${job.ds_name}${i}` })),
      ];
      const decoyIds = new Set<string>();
      for (const metadata of decoys) {
        const batch = await client.batches.create({
          input_file_id: job.input_file_id!,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
          ...(metadata && { metadata }),
        });
        decoyIds.add(batch.id);
      }

      service.faults.disarm();
      const resumed = await runSink(service, runsDir, 'ld-', 10);
      expect(resumed.manifest.jobs[0]!.batch_id).toBe(ours.id);
      const creates = (await service.records()).calls.filter(
        (c) => c.op === 'batch.create' && !decoyIds.has(c.id),
      );
      expect(creates.map((c) => c.id)).toEqual([ours.id]);
      expect(resumed.out).toHaveLength(10);
    });
  });

  it('pages past a thousand newer batches where the provider has no filters (bug: lookups gave up after 1,000)', async () => {
    await withService({ profile: 'openai' }, async (service) => {
      const runsDir = join(root, `runs-${++runs}`);
      const options = { provider: 'custom' as const, apiKey: 'local' };
      service.faults.arm([
        { route: 'batches.create', kind: 'lose', times: 1 },
        // After the new run's one look for an earlier run's batches: the lost create's lookup fails.
        { route: 'batches.list', kind: 'error', status: 503, retryAfterMs: 5, after: 1 },
      ]);
      await runSink(service, runsDir, 'lp-', 5, options).catch(() => undefined);
      const { manifest } = await onlyManifest(runsDir);
      expect(manifest.jobs[0]!.state).toBe('creating');

      await decoyBatches(service, 1_000);

      service.faults.disarm();
      const resumed = await runSink(service, runsDir, 'lp-', 5, options);
      const records = await service.records();
      expect(records.batchesByDsName[resumed.manifest.jobs[0]!.ds_name]).toBe(1);
      expect(resumed.out).toHaveLength(5);
    });
  }, 120_000);

  it('stops paging at batches older than its input file: they cannot be its own', async () => {
    const lines: string[] = [];
    await withService(
      { profile: 'openai', timeScale: 3600, log: (line) => lines.push(line) },
      async (service) => {
        await decoyBatches(service, 150);
        await new Promise((resolve) => setTimeout(resolve, 50));
        // The create never reaches the service (a reset): the lookup must find nothing, and soon.
        service.faults.arm({ route: 'batches.create', kind: 'reset', times: 1 });
        lines.length = 0;
        // A fresh run (newRun): no look for an earlier run's batches, only the lost create's lookup.
        const { out, manifest } = await runSink(service, join(root, `runs-${++runs}`), 'lw-', 5, {
          provider: 'custom',
          apiKey: 'local',
          newRun: true,
        });
        expect(out).toHaveLength(5);
        expect(manifest.jobs[0]!.calls.lookup).toBe(1);
        // One page, whose first batch is older than the input file: the other page is not read.
        expect(lines.filter((l) => l.startsWith('GET /v1/batches '))).toHaveLength(1);
      },
    );
  });

  it('keeps lookups within the list rate of 100 a minute', async () => {
    const lists: number[] = [];
    let refused = 0;
    const log = (line: string) => {
      if (line.startsWith('GET /v1/batches ')) lists.push(Date.now());
      if (line.startsWith('GET /v1/batches 429')) refused++;
    };
    await withService({ timeScale: 1, log }, async (service) => {
      const runsDir = join(root, `runs-${++runs}`);
      // Every create refused: 15 jobs are left with their create intent, each to be looked up on resume.
      service.faults.arm({ route: 'batches.create', kind: 'error', status: 400, times: 15 });
      await runSink(service, runsDir, 'lr-', 150).catch(() => undefined);
      expect((await onlyManifest(runsDir)).manifest.jobs.filter((j) => j.state === 'creating')).toHaveLength(
        15,
      );
      lists.length = 0;
      const { out } = await runSink(service, runsDir, 'lr-', 150);
      expect(out).toHaveLength(150);
      // 15 lookups, then the list pages that poll the running batches: all within one list rate.
      expect(lists.length).toBeGreaterThanOrEqual(15);
      expect(refused).toBe(0);
      // 100 a minute in bursts of 10: the 15th call comes at least 5 x 0.6 s after the first.
      expect(lists[14]! - lists[0]!).toBeGreaterThanOrEqual(2_800);
    });
  }, 30_000);
});
