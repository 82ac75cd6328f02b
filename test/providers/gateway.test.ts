/**
 * The gateway as a client target (ref/gateway-create-batch.txt): creates go to `POST {BASE}/api/v1/batches`
 * and come back in `{success, code, message, data}` (code a string); files, retrieve, list and cancel go
 * to the `/v1` paths under the same BASE. Run against the local service's gateway routes, whose `data`
 * is cut to the document's fields here, so the client must read the whole batch after a create.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { BatchApi } from '../../src/run/batch-api.js';
import { newJob } from '../../src/run/batch-run.js';
import { readManifest } from '../../src/run/manifest.js';
import { runCli } from '../cli/run-cli.js';
import { fileWith, tempDir } from '../helpers.js';

const root = tempDir('bp-gateway-');
const KEY = 'sk-gateway-test-key';
let service: LocalService;
let refusing: LocalService;
/** Each call the service saw: method and path. */
const calls: string[] = [];

beforeAll(async () => {
  service = await startLocalService({
    dataDir: join(root, 'service'),
    apiKey: KEY,
    gateway: { data: 'documented' },
    log: (line) => calls.push(line),
  });
  refusing = await startLocalService({ apiKey: KEY, gateway: { refusalStatus: '200' } });
});
afterAll(async () => {
  await service.close();
  await refusing.close();
});

/** The gateway's BASE_URL: the service's root, without /v1. */
const base = (s: LocalService) => s.url.replace(/\/v1$/, '');

function table(name: string, rows: number): string {
  return fileWith(
    root,
    `${name}.csv`,
    `id,text\n${Array.from({ length: rows }, (_, i) => `${name}-${i},review ${i}`).join('\n')}\n`,
  );
}

function runArgs(input: string, out: string, runsDir: string, extra: string[] = []): string[] {
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
    '3',
    '--out',
    out,
    '--runs-dir',
    runsDir,
    '--provider',
    'gateway',
    '--base-url',
    base(service),
    '--poll-interval',
    '0.1',
    '--lookup-delay',
    '0',
    ...extra,
  ];
}

const env = { BATCHPIPE_API_KEY: KEY, DASHSCOPE_API_KEY: '', OPENAI_API_KEY: '' };

async function createsFor(runId: string): Promise<number> {
  const hash = runId.replace(/^run-/, '');
  return (await service.records()).calls.filter(
    (c) => c.op === 'batch.create' && c.ds_name?.includes(`bp-${hash}-`),
  ).length;
}

describe('--provider gateway', () => {
  it('creates through /api/v1/batches, reads the whole batch from /v1 after it, and joins every row', async () => {
    const input = table('gw', 7);
    const out = join(root, 'gw.csv');
    calls.length = 0;
    const result = await runCli(runArgs(input, out, join(root, 'runs-gw')), { env });
    expect(result.code, result.stderr).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(8);
    expect(lines.slice(1).every((l) => l.includes(',ok,'))).toBe(true);
    // Three creates, each through the gateway's path and each followed by a retrieve on /v1.
    const creates = calls.filter((l) => /POST \/api\/v1\/batches /.test(l));
    expect(creates).toHaveLength(3);
    expect(calls.filter((l) => /POST \/v1\/batches /.test(l))).toHaveLength(0);
    expect(calls.some((l) => /POST \/v1\/files /.test(l))).toBe(true);
    expect(calls.some((l) => /GET \/v1\/batches\/batch_/.test(l))).toBe(true);
    // The run keeps where its calls went: status and resume call the same paths.
    const runs = join(root, 'runs-gw');
    const runDir = join(runs, readdirSync(runs).find((d) => d.startsWith('run-'))!);
    const manifest = await readManifest(runDir);
    expect(manifest.provider).toMatchObject({
      name: 'gateway',
      api_paths: { create: '/api/v1/batches', retrieve: '/v1/batches/{batch_id}' },
    });
    // The whole batch was read after the create: its expiry is not among the create reply's fields.
    expect(manifest.jobs.every((j) => typeof j.batch_expires_at === 'number')).toBe(true);
    expect(JSON.stringify(manifest)).not.toContain(KEY);
    const status = await runCli(['status', runDir, '--json'], { env });
    expect(status.code, status.stderr).toBe(0);
  });

  it('adopts what a run of the same work created from another run directory (lookups over /v1)', async () => {
    const input = table('adopt', 5);
    const first = await runCli(runArgs(input, join(root, 'adopt-1.csv'), join(root, 'runs-a1')), { env });
    expect(first.code, first.stderr).toBe(0);
    const runs = join(root, 'runs-a1');
    const runId = readdirSync(runs).find((d) => d.startsWith('run-'))!;
    expect(await createsFor(runId)).toBe(2);
    const second = await runCli(runArgs(input, join(root, 'adopt-2.csv'), join(root, 'runs-a2')), { env });
    expect(second.code, second.stderr).toBe(0);
    expect(await createsFor(runId)).toBe(2);
    expect(readFileSync(join(root, 'adopt-2.csv'), 'utf8')).toBe(
      readFileSync(join(root, 'adopt-1.csv'), 'utf8'),
    );
  });

  it('adopts a create whose reply was lost instead of creating it again', async () => {
    const input = table('lost', 4);
    service.faults.arm({ route: 'gateway.batches.create', kind: 'lose', times: 1 });
    const result = await runCli(runArgs(input, join(root, 'lost.csv'), join(root, 'runs-lost')), { env });
    service.faults.disarm();
    expect(result.code, result.stderr).toBe(0);
    const runs = join(root, 'runs-lost');
    const runId = readdirSync(runs).find((d) => d.startsWith('run-'))!;
    expect(await createsFor(runId)).toBe(2);
    expect(readFileSync(join(root, 'lost.csv'), 'utf8').match(/,ok,/g)).toHaveLength(4);
  });

  it("says the gateway's refusal: its code and message, under its HTTP status (a wrong key)", async () => {
    const input = table('denied', 2);
    const result = await runCli(runArgs(input, join(root, 'denied.csv'), join(root, 'runs-denied')), {
      env: { ...env, BATCHPIPE_API_KEY: 'sk-wrong-key-x' },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/HTTP 401/);
    expect(result.stderr).not.toContain('sk-wrong-key-x');
  });

  it('retries a 503 in the envelope after looking for its effect, and creates once', async () => {
    const input = table('busy', 2);
    service.faults.arm({ route: 'gateway.batches.create', kind: 'error', status: 503, times: 1 });
    const result = await runCli(runArgs(input, join(root, 'busy.csv'), join(root, 'runs-busy')), { env });
    service.faults.disarm();
    expect(result.code, result.stderr).toBe(0);
    const runs = join(root, 'runs-busy');
    const runId = readdirSync(runs).find((d) => d.startsWith('run-'))!;
    expect(await createsFor(runId)).toBe(1);
  });
});

describe('the gateway create call', () => {
  it('takes success: false under HTTP 200 as a refusal with the gateway code and message', async () => {
    const client = new OpenAI({ baseURL: refusing.url, apiKey: KEY, maxRetries: 0 });
    const line = JSON.stringify({
      custom_id: 'a',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] },
    });
    const file = await client.files.create({
      file: await toFile(Buffer.from(`${line}\n`), 'one.jsonl'),
      purpose: 'batch',
    });
    const api = new BatchApi(
      resolveConnection({ provider: 'gateway', baseURL: base(refusing), apiKey: KEY }),
      {
        settleMs: 0,
      },
    );
    const job = newJob('run-gwrefusal', {
      id: 'requests-00001-a1',
      shard: 'requests-00001.jsonl',
      attempt: 1,
      input: 'requests-00001.jsonl',
      lines: 1,
      bytes: line.length + 1,
      sha256: 'x',
      model: 'qwen-plus',
      endpoint: '/v1/chat/completions',
    });
    job.input_file_id = 'file-batch-missing';
    const tag = { ds_name: job.ds_name, bp_run: 'run-gwrefusal', bp_job: job.id };
    const refused = api.create(job, '24h', tag);
    await expect(refused).rejects.toMatchObject({ code: 'BP_PROVIDER_HTTP' });
    await expect(refused).rejects.toThrow(/code 400: .*file-batch-missing/);
    // One attempt: a 400 is final.
    expect(job.calls.create).toBe(1);
    // And with a real file the envelope's batch comes back whole.
    job.input_file_id = file.id;
    const batch = await api.create(job, '24h', tag);
    expect(batch).toMatchObject({ input_file_id: file.id, metadata: { bp_job: job.id } });
  });

  it('reads a refusal under its own HTTP status from the envelope: the status, the code and message', async () => {
    const api = new BatchApi(
      resolveConnection({ provider: 'gateway', baseURL: base(service), apiKey: KEY }),
      {
        settleMs: 0,
      },
    );
    const job = newJob('run-gwstatus', {
      id: 'requests-00001-a1',
      shard: 'requests-00001.jsonl',
      attempt: 1,
      input: 'requests-00001.jsonl',
      lines: 1,
      bytes: 10,
      sha256: 'x',
      model: 'qwen-plus',
      endpoint: '/v1/chat/completions',
    });
    job.input_file_id = 'file-batch-gone';
    const refused = api.create(job, '24h', { ds_name: job.ds_name, bp_run: 'run-gwstatus', bp_job: job.id });
    await expect(refused).rejects.toMatchObject({ code: 'BP_PROVIDER_HTTP', context: { status: 400 } });
    await expect(refused).rejects.toThrow(/HTTP 400: .*file-batch-gone/);
  });

  it('sends each call to the path it is given (--api-path), and refuses an unknown call name', async () => {
    const moved = resolveConnection({
      provider: 'gateway',
      baseURL: `${base(service)}/v1`,
      apiKey: KEY,
      apiPaths: { create: '/../api/v1/batches', files: '/files', list: '/batches' },
    });
    expect(moved.profile.paths).toMatchObject({
      create: '/../api/v1/batches',
      files: '/files',
      retrieve: '/v1/batches/{batch_id}',
    });
    const usage = await runCli(
      runArgs(table('badpath', 1), join(root, 'badpath.csv'), join(root, 'runs-badpath'), [
        '--api-path',
        'upload=/x',
      ]),
      { env },
    );
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--api-path: unknown call "upload"');
  });
});
