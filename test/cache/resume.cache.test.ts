/**
 * The cache never makes a run submit twice: a run detached while its batches are out, then the cache
 * filled meanwhile by another run with some of the same requests, is found again by the same command
 * (its identity does not depend on what the cache held) and resumed: nothing uploaded again, every row
 * out once.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunTableOptions, runTable } from '../../src/jobs/run-table.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-cache-resume-');
let service: LocalService;

beforeAll(async () => {
  // Slow enough that a batch is still out when the first run detaches.
  service = await startLocalService({ timeScale: 20, seed: 9 });
});
afterAll(() => service.close());

function run(input: string, out: string, extra: Partial<RunTableOptions> = {}) {
  return runTable(input, resolveConnection({ provider: 'local', baseURL: service.url }), {
    model: 'qwen-plus',
    template: 'Say: {{text}}',
    idColumn: 'id',
    temperature: 0,
    runsDir: join(dir, 'runs'),
    pollInterval: 0.05,
    out,
    ...extra,
  });
}

const rows = (name: string, n: number) =>
  fileWith(
    dir,
    name,
    csvText(
      ['id', 'text'],
      Array.from({ length: n }, (_, i) => [`k${i}`, `text ${i}`]),
    ),
  );

describe('a run resumed after the cache changed', () => {
  it('is the same run: nothing is uploaded again and every row comes out', async () => {
    const input = rows('whole.csv', 60);
    const controller = new AbortController();
    const first = await run(input, join(dir, 'whole.out.csv'), {
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === 'created') controller.abort();
      },
    });
    expect(first.state).toBe('detached');
    const uploads = (await service.records()).calls.filter((c) => c.op === 'file.create').length;

    // Another table asking half of the same: its answers go to the cache while the first run is out.
    const other = await run(rows('half.csv', 30), join(dir, 'half.out.csv'));
    expect(other.state).toBe('done');
    expect(other.settled?.stored).toBe(30);
    const afterOther = (await service.records()).calls.filter((c) => c.op === 'file.create').length;
    expect(afterOther).toBe(uploads + 1);

    const again = await run(input, join(dir, 'whole.out.csv'));
    expect(again.state).toBe('done');
    expect(again.run!.dir).toBe(first.run!.dir);
    expect((await service.records()).calls.filter((c) => c.op === 'file.create').length).toBe(afterOther);
    const table = parse(readFileSync(join(dir, 'whole.out.csv'), 'utf8'), { columns: true }) as Array<
      Record<string, string>
    >;
    expect(table.map((r) => r.id)).toEqual(Array.from({ length: 60 }, (_, i) => `k${i}`));
    expect(table.every((r) => r.status === 'ok')).toBe(true);
  });
});
