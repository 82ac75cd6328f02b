/**
 * `batchpipe files list|delete|prune`: the account's stored files (DashScope counts them against
 * "10,000 files / 100 GB per account", output and error files included), selected by run or by age,
 * a dry run unless --yes; a prune never takes the input of a batch still running.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTable } from '../../src/jobs/run-table.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { PROFILES } from '../../src/providers/profiles.js';
import { BatchApi } from '../../src/run/batch-api.js';
import type { RunEvent } from '../../src/run/batch-run.js';
import { readManifest } from '../../src/run/manifest.js';
import { storageUsage, storageWarning } from '../../src/run/storage.js';
import { fileWith, tempDir } from '../helpers.js';
import { runCli } from './run-cli.js';

const root = tempDir('bp-files-');
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ dataDir: join(root, 'service') });
});
afterAll(() => service.close());

const connect = () => ['--provider', 'local', '--base-url', service.url];

async function accountFiles(): Promise<Array<{ id: string; filename: string }>> {
  const client = new OpenAI({ baseURL: service.url, apiKey: 'local', maxRetries: 0 });
  const all = [];
  for await (const f of client.files.list()) all.push({ id: f.id, filename: f.filename });
  return all;
}

async function aRun(name: string): Promise<string> {
  const input = fileWith(
    root,
    `${name}.csv`,
    `id,text\n${[1, 2, 3, 4].map((i) => `${name}-${i},${name} review ${i}`).join('\n')}\n`,
  );
  const runs = join(root, `runs-${name}`);
  const result = await runCli([
    'run',
    input,
    '--template',
    'Classify: {{text}}',
    '--model',
    'qwen-plus',
    '--max-lines-per-file',
    '2',
    '--out',
    join(root, `${name}.out.csv`),
    '--runs-dir',
    runs,
    '--poll-interval',
    '0.1',
    ...connect(),
  ]);
  expect(result.code, result.stderr).toBe(0);
  return join(runs, readdirSync(runs).find((d) => d.startsWith('run-'))!);
}

describe('batchpipe files', () => {
  it("lists a run's files, prunes them only with --yes, and leaves the others", async () => {
    const runDir = await aRun('one');
    const other = await aRun('two');
    const manifest = await readManifest(runDir);
    const ids = manifest.jobs
      .flatMap((j) => [j.input_file_id, j.output_file_id, j.error_file_id])
      .filter(Boolean);
    expect(ids.length).toBeGreaterThanOrEqual(4);

    const listed = await runCli(['files', 'list', '--run', runDir, '--json', ...connect()]);
    expect(listed.code, listed.stderr).toBe(0);
    const report = JSON.parse(listed.stdout);
    expect(report.files.map((f: { id: string }) => f.id).sort()).toEqual([...ids].sort());
    expect(report.account.files).toBe((await accountFiles()).length);
    expect(report.limits).toEqual({ maxFiles: 10_000, maxBytes: 100_000_000_000 });

    const before = await accountFiles();
    const otherBefore = (await readManifest(other)).jobs.map((j) => j.input_file_id);
    expect(otherBefore.filter((id) => !before.some((f) => f.id === id))).toEqual([]);
    const dry = await runCli(['files', 'prune', '--run', runDir, ...connect()]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(
      new RegExp(`dry run: ${ids.length} files, .* would be deleted; --yes deletes them`),
    );
    expect(await accountFiles()).toEqual(before);

    const wet = await runCli(['files', 'prune', '--run', runDir, '--yes', ...connect()]);
    expect(wet.code, wet.stderr).toBe(0);
    const after = await accountFiles();
    expect(after.filter((f) => ids.includes(f.id))).toEqual([]);
    // The other run's files stay.
    const otherIds = (await readManifest(other)).jobs.map((j) => j.input_file_id);
    expect(otherIds.filter((id) => !after.some((f) => f.id === id))).toEqual([]);
    const records = await service.records();
    expect(records.calls.filter((c) => c.op === 'file.delete')).toHaveLength(ids.length);
  });

  it('deletes named files only with --yes', async () => {
    const client = new OpenAI({ baseURL: service.url, apiKey: 'local', maxRetries: 0 });
    const file = await client.files.create({
      file: await toFile(Buffer.from('{}\n'), 'loose.jsonl'),
      purpose: 'batch',
    });
    const dry = await runCli(['files', 'delete', file.id, ...connect()]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toContain(`would delete ${file.id}`);
    expect((await accountFiles()).some((f) => f.id === file.id)).toBe(true);
    const wet = await runCli(['files', 'delete', file.id, '--yes', ...connect()]);
    expect(wet.code, wet.stderr).toBe(0);
    expect((await accountFiles()).some((f) => f.id === file.id)).toBe(false);
  });

  it('prunes by age but keeps the input of a batch still running', async () => {
    const client = new OpenAI({ baseURL: service.url, apiKey: 'local', maxRetries: 0 });
    const line = JSON.stringify({
      custom_id: 'a',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] },
    });
    const running = await client.files.create({
      file: await toFile(Buffer.from(`${line}\n`), 'running.jsonl'),
      purpose: 'batch',
    });
    const batch = await client.batches.create({
      input_file_id: running.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { bp_latency_ms: '600000' },
    });
    const idle = await client.files.create({
      file: await toFile(Buffer.from(`${line}\n`), 'idle.jsonl'),
      purpose: 'batch',
    });
    // Older than a second: both files are (the provider's clock counts whole seconds).
    await sleep(2100);
    const result = await runCli(['files', 'prune', '--older-than', '0m', '--yes', ...connect()]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`keeping ${running.id} (running.jsonl): the input of ${batch.id}`);
    const left = await accountFiles();
    expect(left.some((f) => f.id === running.id)).toBe(true);
    expect(left.some((f) => f.id === idle.id)).toBe(false);
    await client.batches.cancel(batch.id);
  });

  it('refuses a prune that names no files, and an age it cannot read', async () => {
    const none = await runCli(['files', 'prune', ...connect()]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--run <run> and/or --older-than <age>');
    const bad = await runCli(['files', 'list', '--older-than', 'soon', ...connect()]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected an age like 7d');
  });
});

describe('the storage warning', () => {
  it('counts the account from the Files list and warns past 10,000 files or 100 x 10^9 bytes', async () => {
    const client = new OpenAI({ baseURL: service.url, apiKey: 'local', maxRetries: 0 });
    for (const name of ['a.jsonl', 'b.jsonl'])
      await client.files.create({ file: await toFile(Buffer.from('{}\n'), name), purpose: 'batch' });
    const api = new BatchApi(resolveConnection({ provider: 'local', baseURL: service.url }));
    const usage = await storageUsage(api);
    expect(usage).toMatchObject({ files: (await accountFiles()).length, complete: true });
    const limits = PROFILES.dashscope.storage!;
    expect(limits).toEqual({ maxFiles: 10_000, maxBytes: 100 * 10 ** 9 });
    expect(storageWarning(limits, usage, { files: 3, bytes: 1000 })).toBeUndefined();
    const full = { files: 9_998, bytes: 10, complete: true };
    expect(storageWarning(limits, full, { files: 3, bytes: 0 })).toMatch(
      /would reach 10,001 files \(the limit is 10,000\)/,
    );
    // 100 GB is 100 x 10^9 bytes, not GiB: one byte past it warns.
    expect(
      storageWarning(limits, { files: 1, bytes: 100e9, complete: true }, { files: 0, bytes: 0 }),
    ).toBeUndefined();
    expect(
      storageWarning(limits, { files: 1, bytes: 100e9, complete: false }, { files: 0, bytes: 1 }),
    ).toMatch(/holds at least 1 files, .* would reach 100.0 GB/);
    const partial = await storageUsage(api, 1);
    expect(partial).toMatchObject({ files: 1, complete: false });
  });

  it("warns before a run's first upload when its files would take the account past the limit, once per run", async () => {
    const base = resolveConnection({ provider: 'local', baseURL: service.url });
    const held = (await accountFiles()).length;
    // A limit just above what the account holds: the run's 2 shards (6 files with their outputs) pass it.
    const connection = {
      ...base,
      profile: { ...base.profile, storage: { maxFiles: held + 2, maxBytes: 1e12 } },
    };
    const input = fileWith(
      root,
      'warn.csv',
      `id,text\n${[1, 2, 3, 4].map((i) => `w-${i},warn review ${i}`).join('\n')}\n`,
    );
    const notes: string[] = [];
    const options = {
      out: join(root, 'warn.out.csv'),
      runsDir: join(root, 'runs-warn'),
      template: 'Classify: {{text}}',
      model: 'qwen-plus',
      maxLinesPerFile: 2,
      pollInterval: 0.1,
      onEvent: (e: RunEvent) => {
        if (e.type === 'note') notes.push(e.message);
      },
    };
    const result = await runTable(input, connection, options);
    expect(result.state).toBe('done');
    const warnings = notes.filter((n) => n.includes('would reach'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`the account holds ${held} files`);
    expect(warnings[0]).toContain(`with this run's 6 files`);
    expect(warnings[0]).toContain(`(the limit is ${(held + 2).toLocaleString('en-US')})`);
    expect(typeof result.run!.manifest.storage_checked_at).toBe('string');
    // Within the limit: no warning.
    notes.length = 0;
    const roomy = { ...base, profile: { ...base.profile, storage: { maxFiles: 10_000, maxBytes: 1e12 } } };
    const other = fileWith(root, 'roomy.csv', 'id,text\nr-1,roomy review\n');
    await runTable(other, roomy, { ...options, out: join(root, 'roomy.out.csv') });
    expect(notes.filter((n) => n.includes('would reach'))).toEqual([]);
  });
});
