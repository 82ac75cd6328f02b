/**
 * docs/runs.md, "Many batches": polling through the Batches list, uploads held back within the
 * account's file storage (the local service refuses an upload over its quota, as DashScope does), and
 * BP_STORAGE_FULL when files are kept and nothing running could free room. Against the local service
 * over HTTP, with the library's run (createOrResumeRun, wait).
 */
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { describe, expect, it } from 'vitest';
import { prepare } from '../../src/jobs/prepare.js';
import { type LocalServiceOptions, startLocalService } from '../../src/local/index.js';
import { type Connection, resolveConnection } from '../../src/providers/connection.js';
import { readManifest } from '../../src/run/manifest.js';
import { createOrResumeRun, type RunOptions, readPrepared } from '../../src/run/start-run.js';
import { fileWith, tempDir } from '../helpers.js';

const root = tempDir('bp-many-');

async function prepared(name: string, rows: number, perShard: number): Promise<string> {
  const csv = fileWith(
    root,
    `${name}.csv`,
    `id,text\n${Array.from({ length: rows }, (_, i) => `${name}${i},text ${i}`).join('\n')}\n`,
  );
  const dir = join(root, `${name}-prep`);
  await prepare(csv, {
    outDir: dir,
    model: 'qwen-plus',
    template: '{{text}}',
    idColumn: 'id',
    maxLinesPerFile: perShard,
  });
  return dir;
}

/** Runs a prepared dir to its end with a service of `service` options; the calls it received by route. */
async function runWith(
  name: string,
  shards: number,
  service: LocalServiceOptions,
  connect: (c: Connection) => Connection,
  options: Partial<RunOptions> = {},
  otherFiles = 0,
) {
  const calls = new Map<string, number>();
  const local = await startLocalService({
    ...service,
    log: (line) => {
      const m = /^([A-Z]+) (\S+) (\d{3})/.exec(line);
      if (!m) return;
      const route = `${m[1]} ${m[2]!.replace(/\/(file|batch)[-_][\w-]+/g, '/:id')} ${m[3]}`;
      calls.set(route, (calls.get(route) ?? 0) + 1);
    },
  });
  try {
    // Files of the account that are not the run's.
    const client = new OpenAI({ baseURL: local.url, apiKey: 'local' });
    for (let i = 0; i < otherFiles; i++)
      await client.files.create({
        file: await toFile(Buffer.from('{}\n'), `other-${i}.jsonl`),
        purpose: 'batch',
      });
    const dir = await prepared(name, shards * 2, 2);
    const connection = connect(resolveConnection({ provider: 'local', baseURL: local.url }, {}));
    const run = await createOrResumeRun(
      dir,
      await readPrepared(dir),
      connection,
      { runDir: join(root, `${name}-run`), pollInterval: 0.05, lookupDelay: 0.1, concurrency: 4, ...options },
      false,
    );
    try {
      const state = await run.wait();
      return { state, run, calls, records: await local.records(), manifest: await readManifest(run.dir) };
    } finally {
      await run.close();
    }
  } finally {
    await local.close();
  }
}

describe('one run, many batches', () => {
  it('polls running batches through the Batches list pages, not one retrieve each', async () => {
    // 240 requests a batch at 2 ms: the batches run a while, so there are rounds of polls.
    const { state, calls, run, manifest } = await runWith(
      'list',
      30,
      { latencyMs: 2, maxActiveBatches: 4 },
      (c) => c,
    );
    expect(state).toBe('done');
    expect(run.counts()).toMatchObject({ ok: 60, pending: 0 });
    const polls = run.pollCalls;
    expect(polls.list).toBeGreaterThan(0);
    // Every running batch was seen in a list page at least once; retrieves only where a list could not save calls.
    expect(polls.retrieve).toBeLessThan(polls.list);
    expect(calls.get('GET /v1/batches/:id 200') ?? 0).toBe(polls.retrieve);
    expect(manifest.jobs.every((j) => j.state === 'done' && j.calls.poll > 0)).toBe(true);
  });

  it("holds uploads back within the account's file storage, and deletes files to free it", async () => {
    // The service refuses an upload over 9 stored files (result files count); the client knows the quota.
    const storage = { maxFiles: 9, maxBytes: 1e12 };
    const { state, run, records, manifest } = await runWith(
      'storage',
      8,
      { quotas: { maxFiles: 9 } },
      (c) => ({ ...c, profile: { ...c.profile, storage } }),
    );
    expect(state).toBe('done');
    expect(run.counts()).toMatchObject({ ok: 16, pending: 0 });
    // 8 batches of 3 files each would be 24 > 9: the run deleted its files by default, and uploaded each once.
    expect(manifest.options).toMatchObject({ delete_input_files: true, delete_output_files: true });
    expect(Object.values(records.uploadsByFilename)).toEqual(Array(8).fill(1));
    expect(records.calls.filter((c) => c.op === 'file.delete').length).toBeGreaterThanOrEqual(8);
  });

  it("waits when the provider refuses an upload for the account's storage (other files fill it), and finishes", async () => {
    const service = { quotas: { maxFiles: 10 } };
    const notes: string[] = [];
    const { state, run, records } = await runWith(
      'refused',
      8,
      service,
      // A client that does not know the quota: the provider's refusal is what it meets.
      (c) => ({ ...c, profile: { ...c.profile, storage: undefined } }),
      {
        deleteInputFiles: true,
        deleteOutputFiles: true,
        onEvent: (e) => {
          if (e.type === 'note') notes.push(e.message);
        },
      },
      5,
    );
    expect(state).toBe('done');
    expect(run.counts()).toMatchObject({ ok: 16, pending: 0 });
    expect(notes.some((n) => n.includes("the account's file storage is full (storage_quota_exceeded)"))).toBe(
      true,
    );
    // A refused upload was never stored: each file of the run uploaded once.
    expect(
      Object.entries(records.uploadsByFilename).filter(([name]) => name.startsWith('run-')),
    ).toHaveLength(8);
    expect(Object.values(records.uploadsByFilename).every((n) => n === 1)).toBe(true);
  });

  it('stops with BP_STORAGE_FULL when files are kept and nothing running could free room', async () => {
    const storage = { maxFiles: 9, maxBytes: 1e12 };
    await expect(
      runWith('full', 6, { quotas: { maxFiles: 9 } }, (c) => ({ ...c, profile: { ...c.profile, storage } }), {
        keepFiles: true,
      }),
    ).rejects.toMatchObject({
      code: 'BP_STORAGE_FULL',
      message: expect.stringMatching(
        /^\d batches of run-\w+ are held back: .* run without --keep-files, then resume$/,
      ),
    });
  });
});

describe('batches older than the list window', () => {
  it('are retrieved by id when a run resumes after 30 days: the list no longer shows them, every row comes back', async () => {
    const routes: string[] = [];
    // 30 days of the service's clock pass in 4 real seconds (DashScope lists the last 30 days only);
    // a 14-day completion window gives the batches almost 2 real seconds to run, so none expires.
    const local = await startLocalService({
      timeScale: (30 * 86_400) / 4,
      log: (line) => {
        if (/^[A-Z]+ \S+ \d{3}/.test(line)) routes.push(line);
      },
    });
    try {
      const dir = await prepared('window', 6, 2);
      const connection = resolveConnection({ provider: 'local', baseURL: local.url }, {});
      const options = {
        runDir: join(root, 'window-run'),
        pollInterval: 0.05,
        lookupDelay: 0.1,
        completionWindow: '336h',
      };
      const first = await createOrResumeRun(dir, await readPrepared(dir), connection, options, false);
      try {
        await first.submit();
      } finally {
        await first.close();
      }
      const created = (await readManifest(options.runDir)).jobs;
      expect(created.map((j) => j.state)).toEqual(['submitted', 'submitted', 'submitted']);
      // The run is away for more than the list's 30 days; its batches ended meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 4500));
      const ids = created.map((j) => j.batch_id!);
      const listed = await new OpenAI({ baseURL: local.url, apiKey: 'local' }).batches.list();
      expect(listed.data.filter((b) => ids.includes(b.id))).toEqual([]);
      routes.length = 0;
      const again = await createOrResumeRun(dir, await readPrepared(dir), connection, options, false);
      try {
        expect(await again.wait()).toBe('done');
        expect(again.counts()).toMatchObject({ ok: 6, pending: 0 });
      } finally {
        await again.close();
      }
      // Each batch read by its id (the list no longer shows them); none created again: the service
      // created one batch per shard, and the run kept the batches it had.
      expect(routes.filter((r) => r.startsWith('GET /v1/batches/batch_')).length).toBeGreaterThanOrEqual(3);
      const records = await local.records();
      expect(Object.values(records.batchesByInputFile)).toEqual([1, 1, 1]);
      expect((await readManifest(options.runDir)).jobs.map((j) => j.batch_id)).toEqual(ids);
    } finally {
      await local.close();
    }
  });
});
