/**
 * Exactly-once across run directories, through the library: `runTable` after its runs dir was deleted
 * adopts what a run of the same work made at the provider (first attempts and retry attempts), under
 * the DashScope profile (the batch list's ds_name filter, one list call) and the OpenAI one (list pages,
 * an exact match on metadata); `newRun: true` submits afresh. Counted by the service's own records.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepare } from '../../src/jobs/prepare.js';
import { runTable } from '../../src/jobs/run-table.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import type { RunEvent } from '../../src/run/batch-run.js';
import { createOrResumeRun, readPrepared } from '../../src/run/start-run.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-adopt-lib-');
let dashscope: LocalService;
let openai: LocalService;

beforeAll(async () => {
  // A third of the requests fail with a retryable code: the runs make second attempts too.
  dashscope = await startLocalService({ failRate: 0.3, failCodes: ['server_error'], seed: 3 });
  openai = await startLocalService({ profile: 'openai' });
});
afterAll(async () => {
  await dashscope.close();
  await openai.close();
});

function table(name: string, rows: number): string {
  return fileWith(
    dir,
    `${name}.csv`,
    `id,text\n${Array.from({ length: rows }, (_, i) => `${name}${i},text ${i} of ${name}`).join('\n')}\n`,
  );
}

async function creates(service: LocalService): Promise<number> {
  return (await service.records()).calls.filter((c) => c.op === 'batch.create').length;
}
async function uploads(service: LocalService): Promise<number> {
  return (await service.records()).calls.filter((c) => c.op === 'file.create').length;
}

describe('runTable adopts what a run of the same work made', () => {
  it('DashScope profile: first and retry attempts adopted after the runs dir was deleted, one Batches list call and no Files list', async () => {
    const input = table('ds', 20);
    const connection = resolveConnection({ provider: 'local', baseURL: dashscope.url });
    const runsDir = join(dir, 'runs-ds');
    const events: RunEvent[] = [];
    const options = (out: string) => ({
      model: 'qwen-plus',
      template: '{{text}}',
      idColumn: 'id',
      maxLinesPerFile: 5,
      maxAttempts: 2,
      runsDir,
      pollInterval: 0.05,
      out,
      onEvent: (e: RunEvent) => events.push(e),
    });
    const first = await runTable(input, connection, options(join(dir, 'ds-1.csv')));
    expect(first.state).toBe('done');
    const retried = first.run!.manifest.jobs.filter((j) => j.attempt === 2).length;
    expect(retried).toBeGreaterThan(0);
    const made = { creates: await creates(dashscope), uploads: await uploads(dashscope) };
    expect(made.creates).toBe(4 + retried);

    rmSync(runsDir, { recursive: true, force: true });
    events.length = 0;
    const [batchLists, fileLists] = dashscope.faults.arm([
      { route: 'batches.list', kind: 'slow', delayMs: 0 },
      { route: 'files.list', kind: 'slow', delayMs: 0 },
    ]);
    const again = await runTable(input, connection, options(join(dir, 'ds-2.csv')));
    const seen = Object.fromEntries(dashscope.faults.list().map((f) => [f.id, f.seen]));
    dashscope.faults.disarm();
    expect(again.state).toBe('done');
    expect({ creates: await creates(dashscope), uploads: await uploads(dashscope) }).toEqual(made);
    expect(again.counts).toEqual(first.counts);
    expect(readFileSync(join(dir, 'ds-2.csv'), 'utf8')).toBe(readFileSync(join(dir, 'ds-1.csv'), 'utf8'));
    const adopted = events.filter((e) => e.type === 'adopted');
    expect(adopted[0]).toMatchObject({ batches: 4, uploads: 0, jobs: 4, toSend: 0 });
    // The retry attempts came from the same lookup, not from lists of their own.
    expect(adopted.slice(1).reduce((n, e) => n + (e.type === 'adopted' ? e.batches : 0), 0)).toBe(retried);
    // One filtered Batches list found every batch: the Files list was not needed. (The other
    // Batches list calls polled the adopted batches, a page for all of them.)
    expect(seen[batchLists!.id]! - again.run!.pollCalls.list).toBe(1);
    expect(seen[fileLists!.id]).toBe(0);
    expect(again.run!.manifest.jobs.every((j) => j.adopted === true)).toBe(true);
  }, 60_000);

  it('OpenAI profile: list pages with an exact metadata match; newRun submits afresh', async () => {
    const input = table('oa', 9);
    const connection = resolveConnection({
      provider: 'openai',
      baseURL: openai.url,
      apiKey: 'sk-test-openai',
    });
    const runsDir = join(dir, 'runs-oa');
    const options = (out: string, newRun = false) => ({
      model: 'gpt-4o-mini',
      template: '{{text}}',
      idColumn: 'id',
      maxLinesPerFile: 3,
      runsDir,
      pollInterval: 0.05,
      out,
      newRun,
    });
    // Batches of other work at the same provider come first in the list: none of them is adopted.
    const other = await runTable(table('other', 4), connection, options(join(dir, 'other.csv')));
    expect(other.state).toBe('done');
    const first = await runTable(input, connection, options(join(dir, 'oa-1.csv')));
    expect(first.state).toBe('done');
    const made = await creates(openai);
    expect(made).toBe(2 + 3);

    // A newer copy of one shard's upload (the same name and bytes): the batch on the older one is still the job's.
    const job = first.run!.manifest.jobs[0]!;
    const client = new OpenAI({ baseURL: openai.url, apiKey: 'sk-test-openai', maxRetries: 0 });
    await client.files.create({
      file: await toFile(readFileSync(join(first.run!.dir, job.input)), job.file_name),
      purpose: 'batch',
    });
    rmSync(runsDir, { recursive: true, force: true });
    const again = await runTable(input, connection, options(join(dir, 'oa-2.csv')));
    expect(again.state).toBe('done');
    expect(await creates(openai)).toBe(made);
    expect(again.run!.manifest.jobs.map((j) => j.batch_id)).toEqual(
      first.run!.manifest.jobs.map((j) => j.batch_id),
    );
    expect(readFileSync(join(dir, 'oa-2.csv'), 'utf8')).toBe(readFileSync(join(dir, 'oa-1.csv'), 'utf8'));

    const fresh = await runTable(input, connection, options(join(dir, 'oa-3.csv'), true));
    expect(fresh.state).toBe('done');
    expect(await creates(openai)).toBe(made + 3);
    expect(fresh.run!.manifest.run_id).not.toBe(first.run!.manifest.run_id);
    expect(fresh.run!.manifest.earlier).toBeNull();
  }, 60_000);

  it('cancel from a fresh run dir cancels the batches an earlier run of the same work made', async () => {
    const slow = await startLocalService({ latencyMs: 200, concurrency: 1 });
    try {
      const connection = resolveConnection({ provider: 'local', baseURL: slow.url });
      const csv = table('cancel', 12);
      const prepared = join(dir, 'prep-cancel');
      await prepare(csv, {
        outDir: prepared,
        model: 'qwen-plus',
        template: '{{text}}',
        idColumn: 'id',
        maxLinesPerFile: 4,
      });
      const summary = await readPrepared(prepared);
      const options = { runsDir: join(dir, 'runs-cancel'), pollInterval: 0.05 };
      const first = await createOrResumeRun(prepared, summary, connection, options, false);
      await first.submit();
      const batches = first.manifest.jobs.map((j) => j.batch_id);
      await first.close();
      expect(batches.every((id) => typeof id === 'string')).toBe(true);

      rmSync(options.runsDir, { recursive: true, force: true });
      const fresh = await createOrResumeRun(prepared, summary, connection, options, false);
      try {
        expect(fresh.manifest.earlier?.state).toBe('pending');
        await fresh.cancel();
        expect(fresh.manifest.jobs.map((j) => j.batch_id)).toEqual(batches);
      } finally {
        await fresh.close();
      }
      const records = await slow.records();
      const cancelled = new Set(records.calls.filter((c) => c.op === 'batch.cancel').map((c) => c.id));
      // Every earlier batch still running was cancelled; none was created again.
      expect(cancelled.size).toBeGreaterThan(0);
      for (const id of cancelled) expect(batches).toContain(id);
      expect(records.calls.filter((c) => c.op === 'batch.create')).toHaveLength(3);
    } finally {
      await slow.close();
    }
  }, 60_000);

  it('newRun with the run dir of a fresh run resumes it; with the dir of the run made without it, BP_RUN_MISMATCH', async () => {
    const connection = resolveConnection({ provider: 'local', baseURL: openai.url });
    const prepared = join(dir, 'prep-fresh');
    await prepare(table('fresh', 3), {
      outDir: prepared,
      model: 'qwen-plus',
      template: '{{text}}',
      idColumn: 'id',
    });
    const summary = await readPrepared(prepared);
    const runDir = join(dir, 'fresh-run');
    const before = await creates(openai);
    const first = await createOrResumeRun(prepared, summary, connection, { runDir, newRun: true }, false);
    await first.submit();
    const runId = first.manifest.run_id;
    await first.close();
    const again = await createOrResumeRun(prepared, summary, connection, { runDir, newRun: true }, false);
    await again.submit();
    expect(again.manifest.run_id).toBe(runId);
    await again.close();
    expect(await creates(openai)).toBe(before + 1);

    const plainDir = join(dir, 'plain-run');
    const plain = await createOrResumeRun(prepared, summary, connection, { runDir: plainDir }, false);
    expect(plain.manifest.run_id).toBe(plain.manifest.work_id);
    await plain.close();
    const refused = await createOrResumeRun(
      prepared,
      summary,
      connection,
      { runDir: plainDir, newRun: true },
      false,
    ).catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: 'BP_RUN_MISMATCH',
      message: expect.stringMatching(/made without --new-run/),
    });
  }, 60_000);
});
