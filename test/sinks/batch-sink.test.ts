import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { lineError, type RunEvent } from '../../src/run/batch-run.js';
import { readManifest } from '../../src/run/manifest.js';
import { LOCK_FILE } from '../../src/run/run-lock.js';
import type { ResultLine } from '../../src/run/run-results.js';
import { type BatchSinkOptions, batchSink } from '../../src/sinks/batch-sink.js';
import { toRequests } from '../../src/transforms/to-requests.js';
import { validateRequests } from '../../src/transforms/validate-requests.js';
import type { Rejection } from '../../src/types.js';
import { settled, tempDir, textRows } from '../helpers.js';

const root = tempDir('bp-sink-');
let service: LocalService;

beforeAll(async () => {
  // An hour of service time passes in a tenth of a second: polls see progress at once.
  service = await startLocalService({ timeScale: 36_000, dataDir: join(root, 'service') });
});
afterAll(() => service.close());

function rows(count: number, prefix = 'r') {
  return textRows(count, prefix, 'table.csv');
}

async function run(count: number, options: Partial<BatchSinkOptions>, prefix = 'r') {
  const sink = batchSink({
    baseURL: service.url,
    provider: 'local',
    runsDir: join(root, 'runs'),
    pollInterval: 0.05,
    ...options,
  });
  const out: Array<ResultLine | Rejection> = [];
  await pipeline(
    Readable.from(rows(count, prefix)),
    toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
    validateRequests(),
    sink,
    async (source: AsyncIterable<ResultLine | Rejection>) => {
      for await (const item of source) out.push(item);
    },
  );
  return { out, sink, runDir: sink.runDir! };
}

const idOf = (item: ResultLine | Rejection) => item.custom_id;
const codeOf = (item: ResultLine | Rejection) => {
  if ('kind' in item && item.kind === 'rejection') return item.code;
  return lineError(item as ResultLine).code ?? 'ok';
};

describe('batchSink', () => {
  it('shards, uploads, creates, awaits and downloads, and yields every request exactly once', async () => {
    const { out, sink, runDir } = await run(250, { maxLinesPerFile: 60 }, 'e2e-');
    expect(out.map(idOf).sort()).toEqual(
      rows(250, 'e2e-')
        .map((r) => r.values.id)
        .sort(),
    );
    expect(out.every((o) => codeOf(o) === 'ok')).toBe(true);
    expect(sink.counts).toEqual({
      rows: 250,
      rejected: 0,
      ok: 250,
      failed: 0,
      expired: 0,
      cancelled: 0,
      pending: 0,
    });
    const manifest = await readManifest(runDir);
    expect(manifest.jobs.map((j) => [j.lines, j.state, j.status])).toEqual([
      [60, 'done', 'completed'],
      [60, 'done', 'completed'],
      [60, 'done', 'completed'],
      [60, 'done', 'completed'],
      [10, 'done', 'completed'],
    ]);
    const records = await service.records();
    for (const job of manifest.jobs) {
      expect(records.uploadsByFilename[job.file_name]).toBe(1);
      expect(records.batchesByDsName[job.ds_name]).toBe(1);
    }
    // The manifest never holds a key; the local profile has none, so check the shape instead.
    expect(manifest.provider).toEqual({ name: 'local', base_url: null });
  });

  it('resumes the same run for the same input: nothing uploaded or created again', async () => {
    const first = await run(120, { maxLinesPerFile: 50 }, 'again-');
    const before = await service.records();
    const second = await run(120, { maxLinesPerFile: 50 }, 'again-');
    const after = await service.records();
    expect(second.runDir).toBe(first.runDir);
    expect(after.calls.length).toBe(before.calls.length);
    expect(second.out.map(idOf).sort()).toEqual(first.out.map(idOf).sort());
  });

  it('turns refused requests into failed rows, and passes rejections through', async () => {
    const refusing = await startLocalService({ timeScale: 36_000, refuseRate: 0.3, seed: 7 });
    try {
      const sink = batchSink({
        baseURL: refusing.url,
        provider: 'local',
        runsDir: join(root, 'runs-refuse'),
        pollInterval: 0.05,
      });
      const input = [
        ...rows(100, 'ref-'),
        {
          kind: 'rejection' as const,
          index: 101,
          file: 'table.csv',
          line: 102,
          custom_id: null,
          code: 'BP_ROW_FIELD_COUNT' as const,
          message: 'x',
        },
      ];
      const out: Array<ResultLine | Rejection> = [];
      await pipeline(
        Readable.from(input),
        toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
        sink,
        async (source: AsyncIterable<ResultLine | Rejection>) => {
          for await (const item of source) out.push(item);
        },
      );
      expect(out).toHaveLength(101);
      const codes = out.map(codeOf);
      expect(codes.filter((c) => c === 'BP_ROW_FIELD_COUNT')).toHaveLength(1);
      const refused = codes.filter((c) => c === 'data_inspection_failed').length;
      expect(refused).toBeGreaterThan(10);
      expect(sink.counts).toMatchObject({ rows: 101, rejected: 1, ok: 100 - refused, failed: refused });
    } finally {
      await refusing.close();
    }
  });

  it('keeps what an expired batch finished and sends only the rest again', async () => {
    // 50 ms a request, 2 at a time: the first batch's window is ended once a few of its requests are
    // done, so it expires part way, whatever the machine's load.
    const slow = await startLocalService({ latencyMs: 50, concurrency: 2 });
    try {
      let expired = false;
      const sink = batchSink({
        baseURL: slow.url,
        provider: 'local',
        runsDir: join(root, 'runs-expire'),
        pollInterval: 0.05,
        maxAttempts: 10,
        onEvent: (event: RunEvent) => {
          if (expired || event.type !== 'status' || event.completed < 4) return;
          expired = true;
          void slow.expire(event.batch_id);
        },
      });
      const out: ResultLine[] = [];
      await pipeline(
        Readable.from(rows(60, 'exp-')),
        toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
        sink,
        async (source: AsyncIterable<ResultLine>) => {
          for await (const item of source) out.push(item);
        },
      );
      const manifest = await readManifest(sink.runDir!);
      expect(manifest.jobs[0]!.status).toBe('expired');
      expect(manifest.jobs[0]!.outcome!.ok).toBeGreaterThan(0);
      expect(manifest.jobs.length).toBeGreaterThan(1);
      expect(out.map(idOf).sort()).toEqual(
        rows(60, 'exp-')
          .map((r) => r.values.id)
          .sort(),
      );
      const total = sink.counts!;
      expect(total.ok + total.expired).toBe(60);
      // Each request ran in exactly one attempt's output (or expired for good): none was sent twice after it succeeded.
      const okLines = manifest.jobs.flatMap((j) =>
        j.output_path ? readFileSync(join(sink.runDir!, j.output_path), 'utf8').trimEnd().split('\n') : [],
      );
      const okIds = okLines.map((l) => JSON.parse(l).custom_id as string);
      expect(new Set(okIds).size).toBe(okIds.length);
    } finally {
      await slow.close();
    }
  });
});

describe('batchSink and expiry', () => {
  /** A slow service (50 ms a request, 2 at a time): a 60-request batch runs for about 1.5 s. */
  const expiring = (profile: 'dashscope' | 'openai') =>
    startLocalService({ latencyMs: 50, concurrency: 2, profile });

  /**
   * Runs 60 rows through the sink; the first batch's window is ended once a few of its requests are
   * done (the service's own expiry, as a window running out mid-batch). Driven by progress, not by a
   * race between the window and a loaded machine: the batch had begun, and had not finished.
   */
  async function runOn(svc: LocalService, prefix: string, options: Partial<BatchSinkOptions>) {
    let expired = false;
    const sink = batchSink({
      baseURL: svc.url,
      provider: 'local',
      runsDir: join(root, `runs-${prefix}`),
      pollInterval: 0.05,
      ...options,
      onEvent: (event: RunEvent) => {
        if (expired || event.type !== 'status' || event.completed < 4) return;
        expired = true;
        void svc.expire(event.batch_id);
      },
    });
    const out: ResultLine[] = [];
    await pipeline(
      Readable.from(rows(60, prefix)),
      toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
      sink,
      async (source: AsyncIterable<ResultLine>) => {
        for await (const item of source) out.push(item);
      },
    );
    return { out, sink, manifest: await readManifest(sink.runDir!) };
  }

  it("settles OpenAI's batch_expired error lines as expired and sends them again (bug: they were counted as failed)", async () => {
    const svc = await expiring('openai');
    try {
      const { out, sink, manifest } = await runOn(svc, 'oexp-', { maxAttempts: 10 });
      const first = manifest.jobs[0]!;
      expect(first.status).toBe('expired');
      // The service listed what the expiry left unrun in the error file, as OpenAI does.
      expect(first.error_path).not.toBeNull();
      expect(first.outcome).toMatchObject({ failed: 0, expired: 0 });
      expect(first.outcome!.retry).toBeGreaterThan(0);
      expect(sink.counts).toMatchObject({ failed: 0 });
      expect(sink.counts!.ok + sink.counts!.expired).toBe(60);
      expect(out.map(idOf).sort()).toEqual(
        rows(60, 'oexp-')
          .map((r) => r.values.id)
          .sort(),
      );
    } finally {
      await svc.close();
    }
  });

  for (const profile of ['dashscope', 'openai'] as const) {
    it(`with resubmitExpired: false keeps what an expiry left unrun as expired rows (${profile})`, async () => {
      const svc = await expiring(profile);
      try {
        const prefix = `noexp-${profile}-`;
        const { out, sink, manifest } = await runOn(svc, prefix, { resubmitExpired: false });
        expect(manifest.jobs).toHaveLength(1);
        expect(manifest.jobs[0]!.status).toBe('expired');
        expect(sink.counts!.expired).toBeGreaterThan(0);
        expect(sink.counts).toMatchObject({ failed: 0, ok: 60 - sink.counts!.expired });
        const expired = out.filter((o) => codeOf(o) === 'batch_expired');
        expect(expired).toHaveLength(sink.counts!.expired);
      } finally {
        await svc.close();
      }
    });
  }
});

describe('batchSink options', () => {
  it('sends --completion-window 14d to the service as 336h', async () => {
    const { runDir } = await run(5, { completionWindow: '14d' }, 'cw-');
    const manifest = await readManifest(runDir);
    expect(manifest.completion_window).toBe('336h');
    const client = new OpenAI({ baseURL: service.url, apiKey: 'local' });
    const batch = await client.batches.retrieve(manifest.jobs[0]!.batch_id!);
    expect(batch.completion_window).toBe('336h');
  });

  it('says so when the same pipeline runs again with other stored options, and applies the safe ones', async () => {
    await run(10, { maxAttempts: 5 }, 'opt-');
    const events: RunEvent[] = [];
    const { runDir } = await run(10, { maxAttempts: 2, onEvent: (e) => events.push(e) }, 'opt-');
    expect(events.filter((e) => e.type === 'option')).toEqual([
      { type: 'option', option: 'maxAttempts', value: '2', was: '5', applied: true },
    ]);
    expect((await readManifest(runDir)).options.max_attempts).toBe(2);
    const quiet: RunEvent[] = [];
    await run(10, { onEvent: (e) => quiet.push(e) }, 'opt-');
    expect(quiet.filter((e) => e.type === 'option')).toEqual([]);
  });
});

describe('batchSink ending early', () => {
  it('a consumer that stops after a few results leaves the run unlocked, and the same pipeline finishes it', async () => {
    const runsDir = join(root, 'runs-early');
    const sink = batchSink({ baseURL: service.url, provider: 'local', runsDir, pollInterval: 0.05 });
    let seen = 0;
    await pipeline(
      Readable.from(rows(30, 'early-')),
      toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
      sink,
      async (source: AsyncIterable<ResultLine>) => {
        for await (const _ of source) if (++seen === 3) break;
      },
    ).catch(() => undefined);
    expect(seen).toBe(3);
    await settled(() => !existsSync(join(sink.runDir!, LOCK_FILE)));
    expect(existsSync(join(sink.runDir!, LOCK_FILE))).toBe(false);
    const again = await run(30, { runsDir }, 'early-');
    expect(again.runDir).toBe(sink.runDir);
    expect(again.out).toHaveLength(30);
  });

  it('a pipeline torn down while its batches run detaches: the run dir is let go at once, the same pipeline resumes it', async () => {
    const slow = await startLocalService({ timeScale: 1, latencyMs: 50, concurrency: 1 });
    try {
      const runsDir = join(root, 'runs-teardown');
      const options = { baseURL: slow.url, provider: 'local' as const, runsDir, pollInterval: 0.05 };
      const abort = new AbortController();
      const sink = batchSink({
        ...options,
        onEvent: (event) => {
          if (event.type === 'created') abort.abort();
        },
      });
      const torn = await pipeline(
        Readable.from(rows(40, 'torn-')),
        toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
        sink,
        async (source: AsyncIterable<ResultLine>) => {
          for await (const _ of source);
        },
        { signal: abort.signal },
      ).catch((e: unknown) => e);
      expect(torn).toMatchObject({ name: 'AbortError' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(existsSync(join(sink.runDir!, LOCK_FILE))).toBe(false);
      expect((await readManifest(sink.runDir!)).jobs[0]!.state).toBe('submitted');

      const again = batchSink(options);
      const out: ResultLine[] = [];
      await pipeline(
        Readable.from(rows(40, 'torn-')),
        toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
        again,
        async (source: AsyncIterable<ResultLine>) => {
          for await (const item of source) out.push(item);
        },
      );
      expect(again.runDir).toBe(sink.runDir);
      expect(out).toHaveLength(40);
      expect(
        (await slow.records()).batchesByDsName[(await readManifest(sink.runDir!)).jobs[0]!.ds_name],
      ).toBe(1);
    } finally {
      await slow.close();
    }
  });
});

describe('batchSink detached mid-call', () => {
  it('a detach during a download leaves the job to download again, with no partial file (bug: it failed with "Request was aborted")', async () => {
    const svc = await startLocalService({ timeScale: 36_000 });
    try {
      const runsDir = join(root, 'runs-detach-download');
      const options = { baseURL: svc.url, provider: 'local' as const, runsDir, pollInterval: 0.05 };
      svc.faults.arm({ route: 'files.content', kind: 'slow', delayMs: 3_000, times: 1 });
      const detach = new AbortController();
      const sink = batchSink({
        ...options,
        signal: detach.signal,
        onEvent: (event) => {
          if (event.type === 'status' && event.status === 'completed') setTimeout(() => detach.abort(), 300);
        },
      });
      const error = await pipeline(
        Readable.from(rows(20, 'dd-')),
        toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
        sink,
        async (source: AsyncIterable<ResultLine>) => {
          for await (const _ of source);
        },
      ).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'BP_USAGE', message: expect.stringMatching(/^detached from /) });
      const manifest = await readManifest(sink.runDir!);
      expect(manifest.jobs[0]).toMatchObject({ state: 'downloading', output_path: null });
      expect(readdirSync(join(sink.runDir!, 'results'))).toEqual([]);
      expect(existsSync(join(sink.runDir!, LOCK_FILE))).toBe(false);

      const again = batchSink(options);
      const out: ResultLine[] = [];
      await pipeline(
        Readable.from(rows(20, 'dd-')),
        toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
        again,
        async (source: AsyncIterable<ResultLine>) => {
          for await (const item of source) out.push(item);
        },
      );
      expect(out.map(idOf).sort()).toEqual(
        rows(20, 'dd-')
          .map((r) => r.values.id)
          .sort(),
      );
    } finally {
      await svc.close();
    }
  });
});

describe('batchSink against a provider that misbehaves', () => {
  it('reports a batch that fails validation at the provider, with its errors, as failed rows', async () => {
    // The provider offers qwen-max only: a batch of qwen-plus fails at validation, no request runs.
    const strict = await startLocalService({ timeScale: 36_000, models: ['qwen-max'] });
    try {
      const sink = batchSink({
        baseURL: strict.url,
        provider: 'local',
        runsDir: join(root, 'runs-failed'),
        pollInterval: 0.05,
      });
      const out: ResultLine[] = [];
      await pipeline(
        Readable.from(rows(5, 'fail-')),
        toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
        sink,
        async (source: AsyncIterable<ResultLine>) => {
          for await (const item of source) out.push(item);
        },
      );
      expect(out).toHaveLength(5);
      expect(out.every((o) => o.error?.code === 'batch_failed')).toBe(true);
      expect(out[0]!.error?.message).toMatch(/failed before running: .*qwen-plus/);
      const manifest = await readManifest(sink.runDir!);
      expect(manifest.jobs[0]!.status).toBe('failed');
      expect(manifest.jobs[0]!.errors?.length).toBeGreaterThan(0);
      expect(sink.counts).toMatchObject({ failed: 5, ok: 0 });
    } finally {
      await strict.close();
    }
  });

  it('rides out a provider restart mid-run: nothing lost, nothing created twice', async () => {
    const dataDir = join(root, 'restarting');
    const first = await startLocalService({ dataDir, timeScale: 1, latencyMs: 20, concurrency: 2 });
    const port = first.port;
    let second: LocalService | undefined;
    try {
      const sink = batchSink({
        baseURL: first.url,
        provider: 'local',
        runsDir: join(root, 'runs-restart'),
        pollInterval: 0.05,
        maxLinesPerFile: 20,
      });
      const out: ResultLine[] = [];
      const running = pipeline(
        Readable.from(rows(60, 'rs-')),
        toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
        sink,
        async (source: AsyncIterable<ResultLine>) => {
          for await (const item of source) out.push(item);
        },
      );
      await new Promise((resolve) => setTimeout(resolve, 400));
      await first.close();
      second = await startLocalService({ dataDir, port, timeScale: 1, latencyMs: 20, concurrency: 2 });
      await running;
      expect(out.map(idOf).sort()).toEqual(
        rows(60, 'rs-')
          .map((r) => r.values.id)
          .sort(),
      );
      const records = await second.records();
      for (const job of (await readManifest(sink.runDir!)).jobs)
        expect(records.batchesByDsName[job.ds_name]).toBe(1);
    } finally {
      await second?.close();
    }
  });

  it('deletes input files after their batch and output files after download, when asked', async () => {
    const { runDir } = await run(30, { deleteInputFiles: true, deleteOutputFiles: true }, 'del-');
    const manifest = await readManifest(runDir);
    const records = await service.records();
    const deleted = new Set(records.calls.filter((c) => c.op === 'file.delete').map((c) => c.id));
    for (const job of manifest.jobs) {
      expect(deleted.has(job.input_file_id!)).toBe(true);
      expect(deleted.has(job.output_file_id!)).toBe(true);
    }
  });

  it('records a content hash per request: identical requests hash alike, whatever their ids', async () => {
    const input = ['same', 'other', 'same'].map((text, i) => ({
      kind: 'row' as const,
      index: i + 1,
      file: 't.csv',
      line: i + 2,
      values: { id: `dup-${i}`, text },
    }));
    const sink = batchSink({
      baseURL: service.url,
      provider: 'local',
      runsDir: join(root, 'runs-hash'),
      pollInterval: 0.05,
    });
    await pipeline(
      Readable.from(input),
      toRequests({ model: 'qwen-plus', template: '{{text}}', idColumn: 'id', enableThinking: false }),
      sink,
      async (source: AsyncIterable<unknown>) => {
        for await (const _ of source);
      },
    );
    const manifest = await readManifest(sink.runDir!);
    expect(manifest.content_hashes![0]).toMatchObject({ requests: 3, distinct: 2 });
    const hashes = readFileSync(join(sink.runDir!, manifest.content_hashes![0]!.file), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => l.split('\t'));
    expect(hashes.map(([id]) => JSON.parse(id!))).toEqual(['dup-0', 'dup-1', 'dup-2']);
    expect(hashes[0]![1]).toBe(hashes[2]![1]);
    expect(hashes[0]![1]).not.toBe(hashes[1]![1]);
  });
});
