/**
 * Sync mode (docs/sync.md) against the local service's Batch Chat emulation: every row comes out
 * once, refusals (429 for a full queue or the call rate, 503) and timeouts are retried, failures
 * that a retry cannot fix stay as failed rows, nothing answered is paid for twice (the service counts
 * billed answers per request body), and a second run of the same job sends only what has no answer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTable } from '../../src/jobs/run-table.js';
import { type LocalService, type LocalServiceOptions, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import type { ProviderName } from '../../src/providers/profile.js';
import { fileWith, tempDir } from '../helpers.js';

const root = tempDir('bp-sync-');

function csv(rows: number, tag: string): string {
  let text = 'id,text\n';
  for (let i = 1; i <= rows; i++) text += `${i},${tag} review number ${i}\n`;
  return fileWith(root, `${tag}.csv`, text);
}

async function withService<T>(
  options: LocalServiceOptions,
  body: (s: LocalService) => Promise<T>,
): Promise<T> {
  const service = await startLocalService(options);
  try {
    return await body(service);
  } finally {
    await service.close();
  }
}

function connectionTo(service: LocalService, provider: ProviderName = 'dashscope-batch-chat') {
  return resolveConnection({ provider, baseURL: service.url, apiKey: 'local-key' });
}

/** The output table as records (CSV written by batchpipe: no quoted commas in these inputs' ids). */
function table(path: string): Array<Record<string, string>> {
  const [head, ...lines] = readFileSync(path, 'utf8').trimEnd().split('\n');
  const names = head!.split(',');
  return lines.map((line) => {
    const cells = line.match(/("([^"]|"")*"|[^,]*)(,|$)/g)!.map((c) => c.replace(/,$/, ''));
    return Object.fromEntries(names.map((n, i) => [n, (cells[i] ?? '').replace(/^"|"$/g, '')]));
  });
}

const base = { template: 'Say: {{text}}', model: 'qwen-plus', idColumn: 'id', mode: 'sync' as const };

describe('sync mode against Batch Chat', () => {
  it('keeps every row once under refusals (429, 503) and failures; a failure no retry fixes stays a failed row', async () => {
    await withService(
      {
        latencyMs: 20,
        failRate: 0.25,
        failCodes: ['rate_limit_exceeded', 'service_unavailable', 'server_error', 'invalid_parameter_error'],
        batchChat: { enabled: true },
      },
      async (service) => {
        const input = csv(120, 'faults');
        const out = join(root, 'faults.csv');
        const result = await runTable(input, connectionTo(service), {
          ...base,
          out,
          runsDir: join(root, 'runs-faults'),
          maxAttempts: 10,
          callTimeout: 60,
        });
        expect(result.state).toBe('done');
        const rows = table(out);
        expect(rows.map((r) => r.id)).toEqual(Array.from({ length: 120 }, (_, i) => String(i + 1)));
        const failed = rows.filter((r) => r.status !== 'ok');
        expect(failed.length).toBeGreaterThan(0);
        for (const row of failed) {
          expect(row.status).toBe('failed');
          // 429, 503 and 500 are retried until they pass; a 400 is the row's answer.
          expect(row.error_code).toBe('invalid_parameter_error');
        }
        const tally = service.syncTally();
        // Refused and failed calls were sent again, so there were more calls than rows ...
        expect(tally.calls).toBeGreaterThan(120);
        // ... and no row was answered (billed) twice.
        expect(Object.values(tally.answered).every((n) => n === 1)).toBe(true);
        expect(Object.keys(tally.answered)).toHaveLength(120 - failed.length);
        expect(result.counts).toMatchObject({
          rows: 120,
          ok: 120 - failed.length,
          failed: failed.length,
          pending: 0,
        });
      },
    );
    // A row refused or failed several times in a row waits out a doubling backoff (1 s, 2 s, 4 s ...):
    // on a busy machine the unlucky draws can take longer than the default minute.
  }, 180_000);

  it('retries calls refused because the model has too many pending (queue full), until each is answered once', async () => {
    await withService(
      { latencyMs: 60, concurrency: 2, batchChat: { enabled: true, maxPendingPerModel: 3 } },
      async (service) => {
        const input = csv(40, 'queue');
        const out = join(root, 'queue.csv');
        const result = await runTable(input, connectionTo(service), {
          ...base,
          out,
          runsDir: join(root, 'runs-queue'),
          callTimeout: 60,
        });
        expect(result.state).toBe('done');
        expect(table(out).every((r) => r.status === 'ok')).toBe(true);
        const tally = service.syncTally();
        expect(tally.calls).toBeGreaterThan(40);
        expect(Object.values(tally.answered)).toEqual(Array(40).fill(1));
      },
    );
  });

  it('sends again the calls Batch Chat let wait past their timeout (504, not billed)', async () => {
    // 60 service seconds (the documented least timeout) are one real second at timeScale 60; one call
    // at a time at 300 ms each, so most of a window waits too long.
    await withService(
      { timeScale: 60, latencyMs: 300, concurrency: 1, batchChat: { enabled: true } },
      async (service) => {
        const input = csv(16, 'timeout');
        const out = join(root, 'timeout.csv');
        const result = await runTable(input, connectionTo(service), {
          ...base,
          out,
          runsDir: join(root, 'runs-timeout'),
          callTimeout: 60,
          maxAttempts: 10,
        });
        expect(result.state).toBe('done');
        expect(table(out).every((r) => r.status === 'ok')).toBe(true);
        const tally = service.syncTally();
        expect(tally.calls).toBeGreaterThan(16);
        expect(Object.values(tally.answered)).toEqual(Array(16).fill(1));
      },
    );
  });

  it('keeps rows that timed out at every attempt as failed rows, and sends only them again on the next run', async () => {
    await withService({ latencyMs: 10 }, async (service) => {
      // A body's metadata sets its own latency at the local service: rows 3 and 7 take 3 s, past the
      // 1 s call timeout (the plain chat endpoint: no Batch Chat range applies).
      const input = csv(10, 'slow');
      const out = join(root, 'slow.csv');
      const options = {
        model: 'qwen-plus',
        idColumn: 'id',
        mode: 'sync' as const,
        out,
        runsDir: join(root, 'runs-slow'),
        callTimeout: 1,
        maxAttempts: 2,
        mapper: (values: Record<string, unknown>) => ({
          model: 'qwen-plus',
          messages: [{ role: 'user' as const, content: String(values.text) }],
          metadata: { bp_latency_ms: values.id === '3' || values.id === '7' ? '3000' : '0' },
        }),
      };
      const first = await runTable(input, connectionTo(service, 'custom'), options);
      expect(first.state).toBe('done');
      const rows = table(out);
      expect(rows.filter((r) => r.status === 'ok').map((r) => r.id)).toEqual([
        '1',
        '2',
        '4',
        '5',
        '6',
        '8',
        '9',
        '10',
      ]);
      for (const id of ['3', '7']) {
        const row = rows.find((r) => r.id === id)!;
        expect(row.status).toBe('failed');
        expect(row.error_code).toBe('request_timeout');
        expect(row.error_message).toMatch(/not billed/);
      }
      const before = service.syncTally();
      expect(before.calls).toBe(8 + 2 * 2);
      // The same job again: the answered rows are not sent (not paid) again; the two timed out are.
      const second = await runTable(input, connectionTo(service, 'custom'), options);
      expect(second.runDir).toBe(first.runDir);
      const after = service.syncTally();
      expect(after.calls - before.calls).toBe(2 * 2);
      expect(Object.values(after.answered)).toEqual(Array(8).fill(1));
    });
  });

  it('writes the same columns and statuses as a batch run of the same table', async () => {
    await withService({ latencyMs: 0, truncateRate: 0.2, refuseRate: 0.1 }, async (service) => {
      const input = csv(30, 'same');
      const connection = resolveConnection({ provider: 'local', baseURL: service.url });
      const batchOut = join(root, 'same-batch.csv');
      const syncOut = join(root, 'same-sync.csv');
      const common = {
        template: 'Say: {{text}}',
        model: 'qwen-plus',
        idColumn: 'id',
        runsDir: join(root, 'runs-same'),
      };
      await runTable(input, connection, { ...common, out: batchOut, pollInterval: 0.2 });
      await runTable(input, connection, { ...common, out: syncOut, mode: 'sync' });
      const batch = table(batchOut);
      const sync = table(syncOut);
      expect(Object.keys(sync[0]!)).toEqual(Object.keys(batch[0]!));
      // The test engine draws each answer's fate from the request as sent (a batch line, or a call's
      // body), so rows differ; what each status looks like may not.
      const shape = (rows: Array<Record<string, string>>) =>
        [
          ...new Set(
            rows.map((r) => `${r.status}|${r.error_code}|${r.content === '' ? 'no content' : 'content'}`),
          ),
        ].sort();
      expect(new Set(sync.map((r) => r.status))).toEqual(new Set(['ok', 'truncated', 'failed']));
      expect(shape(sync)).toEqual(shape(batch));
    });
  });
});

describe('sync mode re-asks', () => {
  it('asks invalid answers again in sync rounds of their own, each row once in the table', async () => {
    await withService({ invalidJsonRate: 0.3 }, async (service) => {
      const input = csv(60, 'reask');
      const out = join(root, 'reask.csv');
      const result = await runTable(input, connectionTo(service, 'custom'), {
        ...base,
        labels: ['good', 'bad'],
        maxReasks: 2,
        out,
        runsDir: join(root, 'runs-reask'),
      });
      expect(result.state).toBe('done');
      expect(result.reasks!.map((r) => [r.round, r.state])).toEqual([
        [1, 'done'],
        [2, 'done'],
      ]);
      expect(result.reasks![0]!.dir).toBe(join(result.runDir!, 'reask-1'));
      const rows = table(out);
      expect(rows.map((r) => r.id)).toEqual(Array.from({ length: 60 }, (_, i) => String(i + 1)));
      const invalid = rows.filter((r) => r.status === 'invalid_output').length;
      // Each round asks the invalid ones again: fewer remain than the first answers left.
      expect(invalid).toBeLessThan(result.reasks![0]!.requests);
      expect(service.syncTally().calls).toBe(60 + result.reasks!.reduce((n, r) => n + r.requests, 0));
    });
  });
});

describe('the Batch Chat profile', () => {
  it('takes a call timeout only within the documented 60-3600 s', async () => {
    await withService({ batchChat: { enabled: true } }, async (service) => {
      const input = csv(2, 'range');
      await expect(
        runTable(input, connectionTo(service), {
          ...base,
          out: join(root, 'range.csv'),
          runsDir: join(root, 'runs-range'),
          callTimeout: 30,
        }),
      ).rejects.toMatchObject({
        code: 'BP_INVALID_OPTION',
        message: expect.stringMatching(/callTimeout.*60 to 3600 seconds, as documented, got 30/),
      });
    });
  });

  it('is sync only: a batch run with it is refused before anything is sent', async () => {
    await withService({ batchChat: { enabled: true } }, async (service) => {
      const input = csv(2, 'nobatch');
      await expect(
        runTable(input, connectionTo(service), {
          ...base,
          mode: 'batch',
          out: join(root, 'nobatch.csv'),
          runsDir: join(root, 'runs-nobatch'),
        }),
      ).rejects.toMatchObject({ code: 'BP_USAGE', message: expect.stringMatching(/no Batch API/) });
      expect(service.syncTally().calls).toBe(0);
      expect((await service.records()).calls).toHaveLength(0);
    });
  });

  it("offers the Batch Chat document's models: another is rejected before any call", async () => {
    await withService({ batchChat: { enabled: true }, models: 'any' }, async (service) => {
      const input = csv(3, 'models');
      await expect(
        runTable(input, connectionTo(service), {
          ...base,
          model: 'qwen-max',
          out: join(root, 'models.csv'),
          runsDir: join(root, 'runs-models'),
        }),
      ).rejects.toMatchObject({ code: 'BP_MODEL_NOT_OFFERED', message: expect.stringMatching(/qwen-max/) });
      expect(service.syncTally().calls).toBe(0);
    });
  });
});
