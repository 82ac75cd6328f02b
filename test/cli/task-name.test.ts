/**
 * --task-name / --task-description / --metadata: the user's names and metadata on every batch, within
 * the documented lengths ("ds_name <= 100 characters, ds_description <= 200", ref/dashscope-batch-api.txt;
 * OpenAI "16 key-value pairs ... keys ... 64 characters ... values ... 512", ref/openai-batch-openapi.yaml),
 * with the run's identity kept at the end of ds_name so that adoption (by ds_name `bp-<run>-`) still works.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { readManifest } from '../../src/run/manifest.js';
import { fileWith, tempDir } from '../helpers.js';
import { runCli } from './run-cli.js';

const root = tempDir('bp-task-name-');
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ dataDir: join(root, 'service') });
});
afterAll(() => service.close());

function table(name: string, rows: number): string {
  return fileWith(
    root,
    `${name}.csv`,
    `id,text\n${Array.from({ length: rows }, (_, i) => `${name}-${i},review ${i}`).join('\n')}\n`,
  );
}

function runArgs(input: string, out: string, runsDir: string, extra: string[]): string[] {
  return [
    'run',
    input,
    '--template',
    'Classify: {{text}}',
    '--model',
    'qwen-plus',
    '--id-column',
    'id',
    '--max-lines-per-file',
    '2',
    '--out',
    out,
    '--runs-dir',
    runsDir,
    '--provider',
    'local',
    '--base-url',
    service.url,
    '--poll-interval',
    '0.1',
    ...extra,
  ];
}

const onlyRun = (runs: string) => join(runs, readdirSync(runs).find((d) => d.startsWith('run-'))!);

async function batchesOf(runId: string) {
  const client = new OpenAI({ baseURL: service.url, apiKey: 'local', maxRetries: 0 });
  const hash = runId.replace(/^run-/, '');
  const found = [];
  for await (const batch of client.batches.list({ limit: 100 }))
    if ((batch.metadata?.ds_name ?? '').includes(`bp-${hash}-`)) found.push(batch);
  return found;
}

// 150 characters, some outside the BMP (two UTF-16 units each): the limits count characters.
const LONG_NAME = `Nightly review labelling ${'😀'.repeat(20)} ${'x'.repeat(104)}`;

describe('task names and metadata', () => {
  it('puts the task name first in ds_name, cut to fit 100 characters with the identity after it; the description and metadata on every batch', async () => {
    const input = table('named', 4);
    const runs = join(root, 'runs-named');
    const result = await runCli(
      runArgs(input, join(root, 'named.csv'), runs, [
        '--task-name',
        LONG_NAME,
        '--task-description',
        `Weekly eval ${'d'.repeat(300)}`,
        '--metadata',
        'team=nlp',
        '--metadata',
        'ticket=A=1',
      ]),
    );
    expect(result.code, result.stderr).toBe(0);
    const manifest = await readManifest(onlyRun(runs));
    const batches = await batchesOf(manifest.run_id);
    expect(batches).toHaveLength(2);
    for (const batch of batches) {
      const meta = batch.metadata as Record<string, string>;
      const job = manifest.jobs.find((j) => j.batch_id === batch.id)!;
      const identity = `bp-${manifest.run_id.replace(/^run-/, '')}-${job.id}`;
      expect([...meta.ds_name!].length).toBeLessThanOrEqual(100);
      expect(meta.ds_name!.endsWith(` ${identity}`)).toBe(true);
      expect(LONG_NAME.startsWith(meta.ds_name!.slice(0, -identity.length - 1))).toBe(true);
      expect(meta.ds_name!.startsWith('Nightly review labelling 😀')).toBe(true);
      expect([...meta.ds_description!]).toHaveLength(200);
      expect(meta.ds_description!.startsWith('Weekly eval d')).toBe(true);
      expect(meta).toMatchObject({ team: 'nlp', ticket: 'A=1', bp_run: manifest.run_id, bp_job: job.id });
    }
  });

  it('adopts the batches of the same work made under another task name (the identity is matched, not the label)', async () => {
    const input = table('relabel', 4);
    const first = await runCli(
      runArgs(input, join(root, 'relabel-1.csv'), join(root, 'runs-r1'), ['--task-name', 'first name']),
    );
    expect(first.code, first.stderr).toBe(0);
    const runId = (await readManifest(onlyRun(join(root, 'runs-r1')))).run_id;
    expect(await batchesOf(runId)).toHaveLength(2);
    const second = await runCli(
      runArgs(input, join(root, 'relabel-2.csv'), join(root, 'runs-r2'), ['--task-name', 'another name']),
    );
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain('adopted 2 batches');
    expect(await batchesOf(runId)).toHaveLength(2);
    expect(readFileSync(join(root, 'relabel-2.csv'), 'utf8')).toBe(
      readFileSync(join(root, 'relabel-1.csv'), 'utf8'),
    );
  });

  it("refuses batchpipe's own keys, and metadata past OpenAI's bounds, before anything is sent", async () => {
    const own = await runCli(
      runArgs(table('own', 1), join(root, 'own.csv'), join(root, 'runs-own'), ['--metadata', 'bp_run=x']),
    );
    expect(own.code).toBe(2);
    expect(own.stderr).toContain('BP_INVALID_OPTION');
    expect(own.stderr).toMatch(/--metadata: key "bp_run" is batchpipe's own/);
    const openai = (extra: string[]) =>
      runCli(
        [
          'run',
          table('oa', 1),
          '--template',
          'Classify: {{text}}',
          '--model',
          'gpt-4o-mini',
          '--out',
          join(root, 'oa.csv'),
          '--runs-dir',
          join(root, 'runs-oa'),
          '--provider',
          'openai',
          '--base-url',
          'http://127.0.0.1:9/v1',
          ...extra,
        ],
        { env: { OPENAI_API_KEY: 'sk-test-openai' } },
      );
    const pairs = Array.from({ length: 13 }, (_, i) => ['--metadata', `k${i}=v`]).flat();
    const tooMany = await openai(pairs);
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toMatch(/13 pairs and batchpipe's own 4 make 17; OpenAI takes at most 16/);
    const longKey = await openai(['--metadata', `${'k'.repeat(65)}=v`]);
    expect(longKey.code).toBe(2);
    expect(longKey.stderr).toMatch(/65 characters; OpenAI takes keys of at most 64/);
    const longValue = await openai(['--metadata', `k=${'é'.repeat(513)}`]);
    expect(longValue.code).toBe(2);
    expect(longValue.stderr).toMatch(/513 characters; OpenAI takes values of at most 512/);
  });
});
