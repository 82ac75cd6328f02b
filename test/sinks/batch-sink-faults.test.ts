import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { type LocalService, type LocalServiceOptions, startLocalService } from '../../src/local/index.js';
import { readManifest } from '../../src/run/manifest.js';
import type { ResultLine } from '../../src/run/run-results.js';
import { type BatchSinkOptions, batchSink } from '../../src/sinks/batch-sink.js';
import { toRequests } from '../../src/transforms/to-requests.js';
import { tempDir, textRows } from '../helpers.js';

const root = tempDir('bp-faults-');
let runs = 0;

/** A service for one test, the sink's whole pipeline against it, and the service's own records. */
async function runAgainst(
  serviceOptions: LocalServiceOptions,
  arm: (service: LocalService) => void,
  count: number,
  options: Partial<BatchSinkOptions> = {},
) {
  const service = await startLocalService({ timeScale: 36_000, ...serviceOptions });
  try {
    arm(service);
    const sink = batchSink({
      baseURL: service.url,
      provider: 'local',
      runsDir: join(root, `runs-${++runs}`),
      pollInterval: 0.05,
      maxLinesPerFile: 10,
      ...options,
    });
    const out: ResultLine[] = [];
    await pipeline(
      Readable.from(textRows(count, `f${runs}-`)),
      toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
      sink,
      async (source: AsyncIterable<ResultLine>) => {
        for await (const item of source) out.push(item);
      },
    );
    const manifest = await readManifest(sink.runDir!);
    return { out, sink, manifest, records: await service.records(), service };
  } finally {
    await service.close();
  }
}

function expectExactlyOnce(result: Awaited<ReturnType<typeof runAgainst>>, count: number): void {
  const ids = result.out.map((o) => o.custom_id).sort();
  expect(ids).toEqual(
    textRows(count, ids[0]!.replace(/\d+$/, ''))
      .map((r) => r.values.id)
      .sort(),
  );
  for (const job of result.manifest.jobs) {
    expect(result.records.uploadsByFilename[job.file_name], job.file_name).toBe(1);
    expect(result.records.batchesByDsName[job.ds_name], job.ds_name).toBe(1);
  }
}

describe('batchSink when the provider commits a call and the reply is lost', () => {
  it('adopts an upload whose reply was lost instead of uploading again', async () => {
    const result = await runAgainst(
      {},
      (s) => s.faults.arm({ route: 'files.create', kind: 'lose', times: 1 }),
      30,
    );
    expectExactlyOnce(result, 30);
    const first = result.manifest.jobs.find((j) => j.calls.lookup > 0)!;
    expect(first.calls.upload).toBe(1);
  });

  it('adopts a batch whose create reply was lost instead of creating it again', async () => {
    const result = await runAgainst(
      {},
      (s) => s.faults.arm({ route: 'batches.create', kind: 'lose', times: 2 }),
      30,
    );
    expectExactlyOnce(result, 30);
    expect(result.manifest.jobs.filter((j) => j.calls.lookup > 0).length).toBeGreaterThanOrEqual(2);
    expect(result.manifest.jobs.every((j) => j.calls.create === 1)).toBe(true);
  });

  it('adopts a batch whose create reply came after the client gave up (a timeout)', async () => {
    const result = await runAgainst(
      {},
      (s) => s.faults.arm({ route: 'batches.create', kind: 'stall', delayMs: 3_000, times: 1 }),
      20,
      { requestTimeout: 0.5 },
    );
    expectExactlyOnce(result, 20);
  });
});

describe('batchSink when API calls fail for a while', () => {
  it('retries 503s on queries and uploads, and 429s with retry-after on creates, submitting each batch once', async () => {
    const result = await runAgainst(
      {},
      (s) =>
        s.faults.arm([
          { route: 'batches.retrieve', kind: 'error', status: 503, times: 3 },
          { route: 'files.create', kind: 'error', status: 500, times: 2 },
          { route: 'batches.create', kind: 'error', status: 429, retryAfterMs: 100, times: 2 },
        ]),
      30,
    );
    expectExactlyOnce(result, 30);
    expect(result.out.every((o) => !o.error)).toBe(true);
  });

  it('keeps under a cap on unfinished batches by waiting, not by failing', async () => {
    const result = await runAgainst(
      { quotas: { enabled: true, maxUnfinishedBatches: 2 }, latencyMs: 5, concurrency: 2 },
      () => {},
      60,
      { concurrency: 6 },
    );
    expectExactlyOnce(result, 60);
    expect(result.manifest.jobs).toHaveLength(6);
  });

  it('stops with a clear error when the storage quota refuses an upload', async () => {
    const error = await runAgainst({ quotas: { enabled: true, maxFiles: 1 } }, () => {}, 30).catch(
      (e: unknown) => e,
    );
    // Held while batches run (their end may free room); once none runs, nothing will.
    expect(error).toMatchObject({
      code: 'BP_STORAGE_FULL',
      message: expect.stringMatching(
        /refused the upload of .*: the account's file storage is full \(storage_quota_exceeded\), and no batch of run-\w+ is running/,
      ),
    });
  });
});

describe('batchSink when requests fail inside a batch', () => {
  it('sends requests that failed with a retryable code again, until they succeed', async () => {
    const result = await runAgainst(
      { failRate: 0.4, failCodes: ['rate_limit_exceeded:429', 'server_error:500'], seed: 11 },
      () => {},
      50,
      { maxAttempts: 8 },
    );
    expectExactlyOnce(result, 50);
    expect(result.out.every((o) => !o.error && o.response?.status_code === 200)).toBe(true);
    expect(result.manifest.jobs.some((j) => j.attempt > 1)).toBe(true);
    expect(result.sink.counts).toMatchObject({ ok: 50, failed: 0 });
  });

  it('does not send again what failed with a code that a retry cannot fix', async () => {
    const result = await runAgainst(
      { failRate: 0.4, failCodes: ['invalid_parameter_error:400'], seed: 11 },
      () => {},
      50,
    );
    expectExactlyOnce(result, 50);
    expect(result.manifest.jobs.every((j) => j.attempt === 1)).toBe(true);
    const failed = result.out.filter((o) => o.response?.status_code === 400).length;
    expect(failed).toBeGreaterThan(5);
    expect(result.sink.counts).toMatchObject({ ok: 50 - failed, failed });
  });

  it('rides out a provider that crashes mid-batch and comes back', async () => {
    const result = await runAgainst(
      { latencyMs: 10, concurrency: 2, timeScale: 1 },
      (s) => {
        setTimeout(() => void s.restart({ crash: true, downMs: 200 }), 300);
      },
      40,
    );
    expectExactlyOnce(result, 40);
  });
});
