/**
 * Faults inside batches, set per service (options) or per batch (metadata `bp_*`): a share of
 * requests failing with provider error codes (retryable and not), a window that ends now, a file
 * that fails validation, and the service crashing and restarting mid-batch, after which every
 * request is answered exactly once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { startLocalService } from '../../src/local/index.js';
import { retryableRequest } from '../../src/providers/retry.js';
import { tempDir } from '../helpers.js';
import {
  chatLines,
  clientFor,
  type ResultLine,
  raw,
  resultIds,
  resultLines,
  serviceFor,
  submit,
  waitFor,
} from './support.js';

const dir = tempDir('bp-local-batch-faults-');
const { client } = await serviceFor({ timeScale: 3600, seed: 5 });

function errorCode(line: ResultLine): string {
  return (line.response!.body.error as { code: string }).code;
}

describe('requests that fail with provider error codes', () => {
  it('fails the share bp_fail_rate asks for, with retryable and non-retryable codes', async () => {
    const batch = await waitFor(
      client,
      (await submit(client, dir, chatLines(400), { metadata: { bp_fail_rate: '0.25' } })).id,
    );
    expect(batch.status).toBe('completed');
    const errors = await resultLines(client, batch.error_file_id);
    expect(errors.length).toBeGreaterThan(60);
    expect(errors.length).toBeLessThan(140);
    expect(batch.request_counts).toEqual({
      total: 400,
      completed: 400 - errors.length,
      failed: errors.length,
    });
    const byCode = new Map<string, number>();
    for (const line of errors) byCode.set(errorCode(line), line.response!.status_code);
    expect(Object.fromEntries(byCode)).toEqual({
      rate_limit_exceeded: 429,
      server_error: 500,
      invalid_parameter_error: 400,
    });
    // The client's own rule (src/providers/retry.ts) sends the first two again, not the third.
    expect(retryableRequest('rate_limit_exceeded', 429)).toBe(true);
    expect(retryableRequest('server_error', 500)).toBe(true);
    expect(retryableRequest('invalid_parameter_error', 400)).toBe(false);
  });

  it('gives a request sent again in a new batch a new draw, as transient failures go', async () => {
    const lines = chatLines(200, { prefix: 'again-' });
    const first = await waitFor(
      client,
      (await submit(client, dir, lines, { metadata: { bp_fail_rate: '0.5', bp_fail_codes: 'server_error' } }))
        .id,
    );
    const failed = new Set((await resultLines(client, first.error_file_id)).map((l) => l.custom_id));
    expect(failed.size).toBeGreaterThan(50);
    const retry = lines.filter((l) => failed.has(l.custom_id));
    const second = await waitFor(
      client,
      (await submit(client, dir, retry, { metadata: { bp_fail_rate: '0.5', bp_fail_codes: 'server_error' } }))
        .id,
    );
    const stillFailed = second.request_counts!.failed;
    expect(stillFailed).toBeGreaterThan(0);
    expect(stillFailed).toBeLessThan(failed.size * 0.75);
  });

  it('fails the same requests on every run with the same seed and calls', async () => {
    const once = async () => {
      const s = await startLocalService({
        seed: 9,
        failRate: 0.2,
        failCodes: ['Throttling:429', 'server_error'],
      });
      try {
        const c = clientFor(s);
        const batch = await waitFor(c, (await submit(c, dir, chatLines(150))).id);
        return (await resultLines(c, batch.error_file_id)).map((l) => [l.custom_id, errorCode(l)]).sort();
      } finally {
        await s.close();
      }
    };
    const a = await once();
    expect(a.length).toBeGreaterThan(10);
    expect(await once()).toEqual(a);
    expect(new Set(a.map(([, code]) => code))).toEqual(new Set(['Throttling', 'server_error']));
  });

  it('fails synchronous calls at the service fail rate, with the status of the code', async () => {
    const s = await startLocalService({ failRate: 1, failCodes: ['service_unavailable'] });
    try {
      await expect(
        clientFor(s).chat.completions.create({
          model: 'qwen-plus',
          messages: [{ role: 'user', content: 'hi' }],
        }),
      ).rejects.toMatchObject({ status: 503, code: 'service_unavailable' });
    } finally {
      await s.close();
    }
  });

  it('refuses a bad bp_fail_codes with a 400 naming the key', async () => {
    const error = await submit(client, dir, chatLines(2), {
      metadata: { bp_fail_codes: 'not a code!' },
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 400, param: 'metadata.bp_fail_codes' });
  });
});

describe('forced expiry', () => {
  it('expires after exactly bp_expire_after_requests requests, keeping what ran', async () => {
    const batch = await waitFor(
      client,
      (await submit(client, dir, chatLines(120), { metadata: { bp_expire_after_requests: '30' } })).id,
    );
    expect(batch.status).toBe('expired');
    expect(batch.request_counts).toEqual({ total: 120, completed: 30, failed: 0 });
    expect(batch.expires_at).toBeLessThanOrEqual(batch.expired_at!);
    expect((await resultIds(client, batch)).size).toBe(30);
  });

  it('ends a running batch window now, from the admin endpoint and in-process', async () => {
    const slow = await startLocalService({ latencyMs: 5, concurrency: 2 });
    try {
      const c = clientFor(slow);
      const a = await submit(c, dir, chatLines(400));
      await waitFor(c, a.id, (b) => (b.request_counts?.completed ?? 0) >= 10);
      const res = await raw(slow, `/_batchpipe/batches/${a.id}/expire`, { method: 'POST' });
      expect(res.status).toBe(200);
      const expired = await waitFor(c, a.id);
      expect(expired.status).toBe('expired');
      expect(expired.request_counts!.completed).toBeLessThan(400);
      expect((await resultIds(c, expired)).size).toBe(expired.request_counts!.completed);

      const b = await submit(c, dir, chatLines(400));
      await waitFor(c, b.id, (x) => x.status === 'in_progress');
      await slow.expire(b.id);
      expect((await waitFor(c, b.id)).status).toBe('expired');
      await expect(slow.expire(b.id)).rejects.toMatchObject({ code: 'BP_INVALID_OPTION' });
      const finished = await raw(slow, `/_batchpipe/batches/${b.id}/expire`, { method: 'POST' });
      expect(finished.status).toBe(400);
      expect(finished.body.error).toMatchObject({ code: 'batch_not_expirable' });
    } finally {
      await slow.close();
    }
  });

  it('puts the requests an expiry left unrun in the error file with the openai profile', async () => {
    const s = await startLocalService({ profile: 'openai' });
    try {
      const c = clientFor(s);
      const batch = await waitFor(
        c,
        (await submit(c, dir, chatLines(50), { metadata: { bp_expire_after_requests: '20' } })).id,
      );
      expect(batch.status).toBe('expired');
      const unrun = (await resultLines(c, batch.error_file_id)).filter(
        (l) => l.error?.code === 'batch_expired',
      );
      expect(unrun).toHaveLength(30);
    } finally {
      await s.close();
    }
  });
});

describe('forced file failure', () => {
  it('fails the batch at validation with bp_fail_file, no request run, no result file', async () => {
    const batch = await waitFor(
      client,
      (await submit(client, dir, chatLines(10), { metadata: { bp_fail_file: 'true' } })).id,
    );
    expect(batch.status).toBe('failed');
    expect(batch.errors?.data?.[0]).toMatchObject({ code: 'invalid_file', line: null });
    expect(batch.output_file_id).toBeNull();
    expect(batch.error_file_id).toBeNull();
    const named = await waitFor(
      client,
      (await submit(client, dir, chatLines(3), { metadata: { bp_fail_file: 'invalid_jsonl' } })).id,
    );
    expect(named.errors?.data?.[0]?.code).toBe('invalid_jsonl');
  });

  it('fails the share of batches fileFailRate draws, the same ones for the same seed', async () => {
    const statuses = async () => {
      const s = await startLocalService({ fileFailRate: 0.5, seed: 3 });
      try {
        const c = clientFor(s);
        const out: string[] = [];
        for (let i = 0; i < 10; i++)
          out.push((await waitFor(c, (await submit(c, dir, chatLines(2))).id)).status);
        return out;
      } finally {
        await s.close();
      }
    };
    const first = await statuses();
    expect(first).toContain('failed');
    expect(first).toContain('completed');
    expect(await statuses()).toEqual(first);
  });
});

describe('crash and restart mid-batch', () => {
  it('crashes after bp_crash_after_requests, restarts on its own and answers every request once', async () => {
    const s = await startLocalService({ latencyMs: 1, concurrency: 4, checkpointMs: 10 });
    try {
      const c = new OpenAI({ baseURL: s.url, apiKey: 'local', maxRetries: 8 });
      const created = await submit(c, dir, chatLines(300), {
        metadata: { ds_name: 'crash-once', bp_crash_after_requests: '120' },
      });
      const batch = await waitFor(c, created.id);
      expect(batch.status).toBe('completed');
      expect(batch.request_counts).toEqual({ total: 300, completed: 300, failed: 0 });
      const ids = await resultIds(c, batch);
      expect(ids.size).toBe(300);
      expect([...ids.values()].every((n) => n === 1)).toBe(true);
      expect((await s.records()).batchesByDsName).toEqual({ 'crash-once': 1 });
    } finally {
      await s.close();
    }
  });

  it('crashes and restarts on request (in-process and over HTTP), down for downMs, losing nothing', async () => {
    const s = await startLocalService({
      latencyMs: 2,
      concurrency: 4,
      checkpointMs: 10,
      dataDir: `${dir}/crash`,
    });
    try {
      const c = clientFor(s);
      const created = await submit(c, dir, chatLines(400), { metadata: { ds_name: 'crashed' } });
      await waitFor(c, created.id, (b) => (b.request_counts?.completed ?? 0) >= 40);
      const down = s.restart({ crash: true, downMs: 300 });
      await sleep(100);
      await expect(c.batches.retrieve(created.id)).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
      await down;
      await waitFor(c, created.id, (b) => (b.request_counts?.completed ?? 0) >= 200);
      expect(
        (
          await raw(s, '/_batchpipe/restart', {
            method: 'POST',
            body: '{"crash":true}',
            headers: { 'content-type': 'application/json' },
          })
        ).status,
      ).toBe(200);
      let batch: OpenAI.Batches.Batch | undefined;
      for (let i = 0; i < 100 && batch === undefined; i++)
        batch = await waitFor(c, created.id).catch(async () => {
          await sleep(20);
          return undefined;
        });
      expect(batch!.status).toBe('completed');
      const ids = await resultIds(c, batch!);
      expect(ids.size).toBe(400);
      expect([...ids.values()].every((n) => n === 1)).toBe(true);
      expect((await s.records()).batchesByDsName).toEqual({ crashed: 1 });
      expect(s.url).toBe(clientFor(s).baseURL);
    } finally {
      await s.close();
    }
  });

  it('keeps armed faults across a restart', async () => {
    const s = await startLocalService({});
    try {
      s.faults.arm({ route: 'files.list', kind: 'error', status: 503, times: 1 });
      await s.restart();
      expect((await raw(s, '/v1/files')).status).toBe(503);
      expect((await raw(s, '/v1/files')).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});
