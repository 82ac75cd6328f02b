/**
 * How a run settles the requests of a batch that ended, read from the result files on disk. The
 * local service writes `batch_expired` lines itself (openai profile, tested through the sink); it
 * never writes `batch_cancelled`, so these tests hand the run result files as OpenAI would write them.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { newManifest } from '../../src/run/batch-run.js';
import { readManifest, writeManifest } from '../../src/run/manifest.js';
import { runResults } from '../../src/run/run-results.js';
import { openRun } from '../../src/run/start-run.js';
import { tempDir } from '../helpers.js';

const root = tempDir('bp-settle-');
let service: LocalService;
let runs = 0;

beforeAll(async () => {
  service = await startLocalService({ profile: 'openai' });
});
afterAll(() => service.close());

const request = (id: string) =>
  JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: id }] },
  });
const ok = (id: string) =>
  JSON.stringify({
    id: `batch_req_${id}`,
    custom_id: id,
    response: { status_code: 200, request_id: 'r', body: { choices: [{ message: { content: 'hi' } }] } },
    error: null,
  });
const unrun = (id: string, code: string) =>
  JSON.stringify({
    id: `batch_req_${id}`,
    custom_id: id,
    response: null,
    error: { code, message: 'not run' },
  });

/**
 * A run whose one batch ended with `status`: c1 in the output file, c2 and c3 in the error file with
 * `code`, c4 in no file at all. Returns the run dir after the run has settled it.
 */
async function settled(status: 'cancelled' | 'expired', code: string, resubmitExpired: boolean) {
  const dir = join(root, `run-${++runs}`);
  mkdirSync(join(dir, 'results'), { recursive: true });
  const shard = `${['c1', 'c2', 'c3', 'c4'].map(request).join('\n')}\n`;
  writeFileSync(join(dir, 'requests-00001.jsonl'), shard);
  const connection = resolveConnection({ provider: 'local', baseURL: service.url });
  const manifest = newManifest({
    runId: `run-settle${runs}`,
    connection,
    shards: [
      {
        file: 'requests-00001.jsonl',
        model: 'gpt-4o-mini',
        endpoint: '/v1/chat/completions',
        lines: 4,
        bytes: Buffer.byteLength(shard),
        sha256: createHash('sha256').update(shard).digest('hex'),
        first_row: 1,
        last_row: 4,
      },
    ],
    rows: 4,
    rejected: 0,
    completionWindow: '24h',
    maxAttempts: 3,
    resubmitExpired,
    deleteInputFiles: false,
    deleteOutputFiles: false,
  });
  writeFileSync(join(dir, 'results', 'out.jsonl'), `${ok('c1')}\n`);
  writeFileSync(join(dir, 'results', 'err.jsonl'), `${unrun('c2', code)}\n${unrun('c3', code)}\n`);
  Object.assign(manifest.jobs[0]!, {
    state: 'downloading',
    status,
    batch_id: 'batch_handmade',
    output_path: join('results', 'out.jsonl'),
    error_path: join('results', 'err.jsonl'),
  });
  await writeManifest(dir, manifest);
  const run = await openRun(dir, connection, {});
  try {
    await run.poll();
  } finally {
    await run.close();
  }
  return dir;
}

describe('settling what a batch never ran', () => {
  it('counts batch_cancelled error lines as cancelled, not failed (bug: they were counted as failed)', async () => {
    const dir = await settled('cancelled', 'batch_cancelled', true);
    const manifest = await readManifest(dir);
    expect(manifest.jobs).toHaveLength(1);
    expect(manifest.jobs[0]!.outcome).toEqual({ ok: 1, failed: 0, expired: 0, cancelled: 3, retry: 0 });
    const codes = new Map<string, string | null | undefined>();
    for await (const line of runResults(dir, manifest))
      if (!('kind' in line)) codes.set(line.custom_id, line.error?.code ?? null);
    expect(Object.fromEntries(codes)).toEqual({
      c1: null,
      c2: 'batch_cancelled',
      c3: 'batch_cancelled',
      c4: 'batch_cancelled',
    });
  });

  it('counts batch_expired error lines as expired when they are not to be sent again', async () => {
    const dir = await settled('expired', 'batch_expired', false);
    const manifest = await readManifest(dir);
    expect(manifest.jobs).toHaveLength(1);
    expect(manifest.jobs[0]!.outcome).toEqual({ ok: 1, failed: 0, expired: 3, cancelled: 0, retry: 0 });
  });

  it('sends batch_expired requests again in the next attempt, with those that got no line', async () => {
    const dir = await settled('expired', 'batch_expired', true);
    const manifest = await readManifest(dir);
    expect(manifest.jobs[0]!.outcome).toEqual({ ok: 1, failed: 0, expired: 0, cancelled: 0, retry: 3 });
    const retry = manifest.jobs[1]!;
    expect(retry).toMatchObject({ attempt: 2, lines: 3, state: 'pending' });
    const ids = readFileSync(join(dir, retry.input), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).custom_id);
    expect(ids).toEqual(['c2', 'c3', 'c4']);
  });
});
