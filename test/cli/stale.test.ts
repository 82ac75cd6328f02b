/**
 * Results are joined only onto the table they answer: a row edited after its request was made (same
 * id, other text), or another table entirely, comes out `stale` (not `ok` with an answer to another
 * prompt) when the join knows the requests' row hashes (a prepared or run directory); the table is
 * written and the command exits 1 unless --allow-stale. Bare result files cannot be checked: that is
 * said once. The spawned CLI against its embedded local service, and `batchpipe serve` for a run whose
 * input changes while it is out.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';
import { CLI, runCli } from './run-cli.js';

const dir = tempDir('bp-cli-stale-');
const TEMPLATE = 'Classify the review: {{review}}';
const ROWS = 12;

function reviews(edit: (i: number, text: string) => string = (_i, text) => text): string {
  const rows = Array.from({ length: ROWS }, (_, i) => [
    `k${i}`,
    edit(i, `review ${i}: "fine", mostly`),
    `n${i}`,
  ]);
  return csvText(['id', 'review', 'note'], rows);
}

function readTable(path: string): Array<Record<string, string>> {
  return parse(readFileSync(path, 'utf8'), { columns: true }) as Array<Record<string, string>>;
}

const UNCHECKED = 'note: rows were not checked against the requests their results answer';

/** One run of the original table, shared by the tests: its run directory holds results and row hashes. */
const original = fileWith(dir, 'reviews.csv', reviews());
const runDir = join(dir, 'run');
let first: Array<Record<string, string>>;

beforeAll(async () => {
  const out = join(dir, 'first.csv');
  const ran = await runCli([
    'run',
    original,
    '--out',
    out,
    '--template',
    TEMPLATE,
    '--model',
    'qwen-plus',
    '--id-column',
    'id',
    '--run-dir',
    runDir,
    '--poll-interval',
    '0.05',
  ]);
  expect(ran.stderr).not.toContain('BP_RESULT_STALE');
  expect(ran.code).toBe(0);
  first = readTable(out);
  expect(first.every((r) => r.status === 'ok')).toBe(true);
  expect(existsSync(join(runDir, 'row-hashes.tsv'))).toBe(true);
});

async function joinOnto(source: string, name: string, ...extra: string[]) {
  const out = join(dir, `${name}.csv`);
  const result = await runCli([
    'join',
    '--source',
    source,
    '--results',
    runDir,
    '--id-column',
    'id',
    '--out',
    out,
    ...extra,
  ]);
  return { ...result, rows: existsSync(out) ? readTable(out) : [] };
}

describe('batchpipe join checks rows against the requests their results answer', () => {
  it('an unedited table: every row ok, exit 0, nothing said about checking', async () => {
    const joined = await joinOnto(original, 'same');
    expect(joined.code).toBe(0);
    expect(joined.rows.map((r) => r.status)).toEqual(Array(ROWS).fill('ok'));
    expect(joined.rows.map((r) => r.content)).toEqual(first.map((r) => r.content));
    expect(joined.stderr).not.toContain(UNCHECKED);
  });

  it('edited rows (same ids, other text) come out stale; the table is written, then exit 1', async () => {
    const edited = fileWith(
      dir,
      'edited.csv',
      reviews((i, text) => (i === 3 || i === 7 ? `${text} (edited)` : text)),
    );
    const joined = await joinOnto(edited, 'edited');
    expect(joined.code).toBe(1);
    expect(joined.stderr).toContain(
      `joined ${ROWS} rows -> ${join(dir, 'edited.csv')}: ${ROWS - 2} ok, 2 stale`,
    );
    expect(joined.stderr).toContain(
      'error BP_RESULT_STALE: 2 of 12 rows changed after their requests were made',
    );
    expect(joined.stderr).not.toMatch(/^\s+at /m);
    expect(joined.rows).toHaveLength(ROWS);
    for (const [i, row] of joined.rows.entries()) {
      if (i === 3 || i === 7) {
        expect(row).toMatchObject({
          id: `k${i}`,
          status: 'stale',
          content: '',
          error_code: 'BP_RESULT_STALE',
        });
        expect(row.error_message).toContain(`custom_id "k${i}" answers another prompt`);
      } else expect(row).toMatchObject({ status: 'ok', content: first[i]!.content });
    }
  });

  it('--allow-stale: the same table, exit 0', async () => {
    const edited = fileWith(
      dir,
      'edited2.csv',
      reviews((i, text) => (i === 0 ? 'something else' : text)),
    );
    const joined = await joinOnto(edited, 'allowed', '--allow-stale');
    expect(joined.code).toBe(0);
    expect(joined.rows.filter((r) => r.status === 'stale').map((r) => r.id)).toEqual(['k0']);
  });

  it('a column the template does not use may change: those rows stay ok', async () => {
    const renoted = fileWith(dir, 'renoted.csv', reviews().replace(/,n(\d+)(\r?\n)/g, ',changed-n$1$2'));
    const joined = await joinOnto(renoted, 'renoted');
    expect(joined.code).toBe(0);
    expect(joined.rows.every((r) => r.status === 'ok' && r.note!.startsWith('changed-n'))).toBe(true);
  });

  it('another table entirely, with the same ids: every row stale', async () => {
    const other = fileWith(
      dir,
      'other.csv',
      csvText(
        ['id', 'review'],
        Array.from({ length: ROWS }, (_, i) => [`k${i}`, `a different product ${i}`]),
      ),
    );
    const joined = await joinOnto(other, 'other');
    expect(joined.code).toBe(1);
    expect(joined.rows.map((r) => r.status)).toEqual(Array(ROWS).fill('stale'));
  });

  it('bare result files cannot be checked: said once, exit 0', async () => {
    const edited = fileWith(
      dir,
      'edited3.csv',
      reviews((i, text) => (i === 1 ? 'edited' : text)),
    );
    const out = join(dir, 'bare.csv');
    const joined = await runCli([
      'join',
      '--source',
      edited,
      '--results',
      join(runDir, 'results.jsonl'),
      '--id-column',
      'id',
      '--out',
      out,
    ]);
    expect(joined.code).toBe(0);
    expect(joined.stderr.split(UNCHECKED)).toHaveLength(2);
    expect(readTable(out).every((r) => r.status === 'ok')).toBe(true);
  });

  it('a prepared directory holds the row hashes too (prepare, then join with it)', async () => {
    const prepared = join(dir, 'prepared');
    const made = await runCli([
      'prepare',
      original,
      '--out',
      prepared,
      '--template',
      TEMPLATE,
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
    ]);
    expect(made.code).toBe(0);
    const header = readFileSync(join(prepared, 'row-hashes.tsv'), 'utf8').split('\n')[0];
    expect(JSON.parse(header!)).toEqual({ row_hashes: 1, columns: ['review'] });
    const edited = fileWith(
      dir,
      'edited4.csv',
      reviews((i, text) => (i === 5 ? 'edited' : text)),
    );
    const out = join(dir, 'from-prepared.csv');
    const joined = await runCli([
      'join',
      '--source',
      edited,
      '--results',
      prepared,
      '--results',
      join(runDir, 'results.jsonl'),
      '--id-column',
      'id',
      '--out',
      out,
    ]);
    expect(joined.code).toBe(1);
    expect(
      readTable(out)
        .filter((r) => r.status === 'stale')
        .map((r) => r.id),
    ).toEqual(['k5']);
  });
});

describe('batchpipe run whose input changes while the run is out', () => {
  let service: LocalService;
  beforeAll(async () => {
    // Each request takes a while, so the table can be edited after prepare and before the join.
    service = await startLocalService({ latencyMs: 1500 });
  });
  afterAll(() => service.close());

  async function runEditedMidway(name: string, ...extra: string[]) {
    const input = fileWith(dir, `${name}.csv`, reviews());
    const out = join(dir, `${name}-out.csv`);
    const dirOfRun = join(dir, `${name}-run`);
    const { spawn } = await import('node:child_process');
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        input,
        '--out',
        out,
        '--template',
        TEMPLATE,
        '--model',
        'qwen-plus',
        '--id-column',
        'id',
        '--run-dir',
        dirOfRun,
        '--poll-interval',
        '0.05',
        ...extra,
      ],
      { env: { ...process.env, BATCHPIPE_PROVIDER: 'local', BATCHPIPE_BASE_URL: service.url } },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    // The manifest is written once the requests are made: then the table changes under the run.
    while (!existsSync(join(dirOfRun, 'manifest.json'))) await sleep(20);
    writeFileSync(
      input,
      reviews((i, text) => (i === 2 ? `${text} (edited)` : text)),
    );
    const code = await exited;
    return { code, stderr, rows: existsSync(out) ? readTable(out) : [] };
  }

  it('the rows edited meanwhile are stale, the table is written, exit 1', async () => {
    const ran = await runEditedMidway('midway');
    expect(ran.stderr).toContain('error BP_RESULT_STALE: 1 of 12 rows changed');
    expect(ran.code).toBe(1);
    expect(ran.rows.map((r) => r.status)).toEqual(
      Array.from({ length: ROWS }, (_, i) => (i === 2 ? 'stale' : 'ok')),
    );
  });

  it('--allow-stale: exit 0, the same statuses', async () => {
    const ran = await runEditedMidway('midway-allowed', '--allow-stale');
    expect(ran.code).toBe(0);
    expect(ran.stderr).toContain('11 ok, 1 stale');
    expect(ran.rows.filter((r) => r.status === 'stale').map((r) => r.id)).toEqual(['k2']);
  });
});
