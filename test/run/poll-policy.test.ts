/**
 * ref/dashscope-batch-api.txt: "Poll every 1–2 minutes." Against a provider, no batch is retrieved
 * more than once in 60 s, jitter included, in one process or across a resume; faster only against the
 * local service or when asked (an explicit pollInterval / --poll-interval).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { type Connection, resolveConnection } from '../../src/providers/connection.js';
import { newManifest, pollDelayMs } from '../../src/run/batch-run.js';
import { readManifest, writeManifest } from '../../src/run/manifest.js';
import { openRun, pollPolicy, type RunOptions } from '../../src/run/start-run.js';
import { tempDir } from '../helpers.js';

const root = tempDir('bp-poll-');
let service: LocalService;
let runs = 0;

beforeAll(async () => {
  service = await startLocalService({ latencyMs: 0 });
});
afterAll(() => service.close());

describe('the poll policy', () => {
  it('waits at least 60 s between polls against a provider by default, jitter included (the first polls came after ~7.5 s)', () => {
    for (const provider of ['dashscope', 'dashscope-cn', 'openai', 'custom'] as const) {
      const policy = pollPolicy(provider, undefined);
      expect(policy).toEqual({ pollIntervalMs: 60_000, pollGapMs: 60_000 });
      for (let round = 0; round < 12; round++)
        for (const random of [0, 0.25, 0.5, 0.999_999]) {
          const delay = pollDelayMs(policy, round, random);
          expect(delay).toBeGreaterThanOrEqual(60_000);
          expect(delay).toBeLessThanOrEqual(72_000);
        }
    }
  });

  it('polls the local service sooner, and a provider as often as asked', () => {
    const local = pollPolicy('local', undefined);
    expect(local.pollGapMs).toBe(0);
    expect(pollDelayMs(local, 0, 0.5)).toBeLessThan(1000);
    const asked = pollPolicy('dashscope', 5);
    expect(asked).toEqual({ pollIntervalMs: 5000, pollGapMs: 5000 });
    expect(pollDelayMs(asked, 0, 0)).toBe(5000);
  });
});

/** A run of one shard of two requests, made for `connection`, not yet submitted. */
async function oneShardRun(connection: Connection): Promise<string> {
  const dir = join(root, `run-${++runs}`);
  mkdirSync(dir, { recursive: true });
  const shard = ['a', 'b']
    .map((id) =>
      JSON.stringify({
        custom_id: id,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'qwen-plus', messages: [{ role: 'user', content: id }] },
      }),
    )
    .join('\n')
    .concat('\n');
  writeFileSync(join(dir, 'requests-00001.jsonl'), shard);
  const manifest = newManifest({
    runId: `run-poll${runs}`,
    connection,
    shards: [
      {
        file: 'requests-00001.jsonl',
        model: 'qwen-plus',
        endpoint: '/v1/chat/completions',
        lines: 2,
        bytes: Buffer.byteLength(shard),
        sha256: createHash('sha256').update(shard).digest('hex'),
        first_row: 1,
        last_row: 2,
      },
    ],
    rows: 2,
    rejected: 0,
    completionWindow: '24h',
    maxAttempts: 1,
    resubmitExpired: false,
    deleteInputFiles: false,
    deleteOutputFiles: false,
  });
  await writeManifest(dir, manifest);
  return dir;
}

/** Opens the run (as a new process would), polls it `times` times at once, closes it. */
async function pollTimes(dir: string, connection: Connection, times: number, options: RunOptions = {}) {
  const run = await openRun(dir, connection, options);
  try {
    for (let i = 0; i < times; i++) await run.poll();
  } finally {
    await run.close();
  }
  return (await readManifest(dir)).jobs[0]!;
}

describe('polling a provider (the local service, reached as DashScope)', () => {
  const asDashScope = () =>
    resolveConnection({ provider: 'dashscope', baseURL: service.url, apiKey: 'sk-x' });

  it('retrieves no batch twice within 60 s, in one process or after a resume', async () => {
    const connection = asDashScope();
    const dir = await oneShardRun(connection);
    const run = await openRun(dir, connection, {});
    try {
      await run.submit();
      // Just created: its state came with the create reply, so it is not asked for again yet.
      await run.poll();
      await run.poll();
    } finally {
      await run.close();
    }
    let job = (await readManifest(dir)).jobs[0]!;
    expect(job.state).toBe('submitted');
    expect(job.calls.poll).toBe(0);
    // A minute passes (the created time is moved back, not waited for).
    const manifest = await readManifest(dir);
    manifest.jobs[0]!.submitted_at = new Date(Date.now() - 61_000).toISOString();
    await writeManifest(dir, manifest);
    job = await pollTimes(dir, connection, 3);
    expect(job.calls.poll).toBe(1);
    expect(typeof job.polled_at).toBe('number');
    // A resume right after: the last retrieve is in the manifest, so none again yet.
    job = await pollTimes(dir, connection, 2);
    expect(job.calls.poll).toBe(1);
    // Asked for (an explicit poll interval): as often as asked.
    await new Promise((resolve) => setTimeout(resolve, 30));
    job = await pollTimes(dir, connection, 1, { pollInterval: 0.01 });
    expect(job.calls.poll).toBe(2);
  });

  it('polls the local service as soon as asked', async () => {
    const connection = resolveConnection({ provider: 'local', baseURL: service.url });
    const dir = await oneShardRun(connection);
    const run = await openRun(dir, connection, {});
    try {
      await run.submit();
      await run.poll();
      await run.poll();
      expect(run.manifest.jobs[0]!.calls.poll).toBe(2);
    } finally {
      await run.close();
    }
  });
});
