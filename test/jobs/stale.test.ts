/**
 * The library's side of stale rows: joinResults' `rowHashes`, joinTable (the table written, then
 * BP_RESULT_STALE unless `allowStale`) and runTable (an input edited while the run is out), against the
 * local service over HTTP.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { joinTable } from '../../src/jobs/join-table.js';
import { runTable } from '../../src/jobs/run-table.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { RESULTS_FILE, ROW_HASHES_FILE } from '../../src/run/index.js';
import { jsonlSink } from '../../src/sinks/jsonl-sink.js';
import { jsonlSource } from '../../src/sources/jsonl-source.js';
import { resultSource } from '../../src/sources/result-source.js';
import { joinResults } from '../../src/transforms/join-results.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-jobs-stale-');
const ROWS = 8;
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ timeScale: 36_000 });
});
afterAll(() => service.close());

function table(edit: (i: number) => string | undefined = () => undefined): string {
  return csvText(
    ['id', 'text'],
    Array.from({ length: ROWS }, (_, i) => [`r${i}`, edit(i) ?? `sentence ${i}, "quoted" and 日本語`]),
  );
}

const read = (path: string) =>
  parse(readFileSync(path, 'utf8'), { columns: true }) as Array<Record<string, string>>;

function run(input: string, name: string, options: { allowStale?: boolean; onCreated?: () => void } = {}) {
  return runTable(input, resolveConnection({ provider: 'local', baseURL: service.url }), {
    model: 'qwen-plus',
    template: 'Translate: {{text}}',
    idColumn: 'id',
    runDir: join(dir, `${name}-run`),
    runsDir: join(dir, 'runs'),
    pollInterval: 0.02,
    out: join(dir, `${name}.csv`),
    allowStale: options.allowStale,
    // Each test edits its input when its batch is created: a run of the same work adopted from an
    // earlier test would create none.
    newRun: true,
    onEvent: (event) => {
      if (event.type === 'created') options.onCreated?.();
    },
  });
}

describe('stale rows in the library', () => {
  it('runTable: rows edited while the run is out are stale; BP_RESULT_STALE after the table is written', async () => {
    const input = fileWith(dir, 'input.csv', table());
    const error = await run(input, 'edited', {
      onCreated: () =>
        writeFileSync(
          input,
          table((i) => (i === 4 ? 'changed' : undefined)),
        ),
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BP_RESULT_STALE' });
    expect((error as Error).message).toContain(`1 of ${ROWS} rows changed after their requests were made`);
    const rows = read(join(dir, 'edited.csv'));
    expect(rows.map((r) => r.status)).toEqual(
      Array.from({ length: ROWS }, (_, i) => (i === 4 ? 'stale' : 'ok')),
    );
  });

  it('runTable with allowStale: the result, its summary counting the stale row', async () => {
    const input = fileWith(dir, 'input2.csv', table());
    const result = await run(input, 'allowed', {
      allowStale: true,
      onCreated: () =>
        writeFileSync(
          input,
          table((i) => (i === 0 ? 'changed' : undefined)),
        ),
    });
    expect(result.joined!.statuses).toMatchObject({ ok: ROWS - 1, stale: 1 });
    expect(result.joined!.checked).toBe(true);
  });

  it('joinTable: checked with the run directory row hashes, not checked without', async () => {
    const input = fileWith(dir, 'input3.csv', table());
    const ran = await run(input, 'plain');
    expect(ran.joined!.statuses.ok).toBe(ROWS);
    const runDir = ran.run!.dir;
    const edited = fileWith(
      dir,
      'edited3.csv',
      table((i) => (i % 2 === 0 ? `other ${i}` : undefined)),
    );
    const base = { source: edited, results: [join(runDir, RESULTS_FILE)], idColumn: 'id' };
    const error = await joinTable({
      ...base,
      rowHashes: [join(runDir, ROW_HASHES_FILE)],
      out: join(dir, 'j1.csv'),
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BP_RESULT_STALE' });
    expect(read(join(dir, 'j1.csv')).filter((r) => r.status === 'stale')).toHaveLength(ROWS / 2);
    const allowed = await joinTable({
      ...base,
      rowHashes: [join(runDir, ROW_HASHES_FILE)],
      allowStale: true,
      out: join(dir, 'j2.csv'),
    });
    expect(allowed).toMatchObject({ checked: true, statuses: { ok: ROWS / 2, stale: ROWS / 2 } });
    const unchecked = await joinTable({ ...base, out: join(dir, 'j3.csv') });
    expect(unchecked).toMatchObject({ checked: false, statuses: { ok: ROWS, stale: 0 } });
    // Rows out of the order they were prepared in are looked up by id: reversed, one deleted, one
    // edited after the deletion.
    const lines = table().trimEnd().split(/\r?\n/);
    const body = lines.slice(1).reverse();
    const moved = [
      lines[0],
      ...body.filter((l) => !l.startsWith('r2,')).map((l) => (l.startsWith('r1,') ? 'r1,changed' : l)),
    ];
    const reordered = fileWith(dir, 'reordered.csv', `${moved.join('\n')}\n`);
    const looked = await joinTable({
      ...base,
      source: reordered,
      rowHashes: [join(runDir, ROW_HASHES_FILE)],
      allowStale: true,
      out: join(dir, 'j4.csv'),
    });
    expect(looked).toMatchObject({ rows: ROWS - 1, orphans: 1, statuses: { ok: ROWS - 2, stale: 1 } });
    expect(
      read(join(dir, 'j4.csv'))
        .filter((r) => r.status === 'stale')
        .map((r) => r.id),
    ).toEqual(['r1']);
  });

  it('joinResults with rowHashes, composed over JSON Lines rows: the same hashes as prepare made', async () => {
    // A JSON Lines table run and joined as JSON Lines: each row's cells hash as the template wrote them.
    const lines = (edit: number) =>
      Array.from({ length: ROWS }, (_, i) =>
        JSON.stringify({ id: `r${i}`, text: i === edit ? 'edited' : `line ${i} "q" ü` }),
      ).join('\n');
    const input = fileWith(dir, 'input.jsonl', `${lines(-1)}\n`);
    const ran = await run(input, 'jsonl');
    const runDir = ran.run!.dir;
    const edited = fileWith(dir, 'edited.jsonl', `${lines(6)}\n`);
    const out = join(dir, 'composed.jsonl');
    const joined = joinResults({
      source: () => jsonlSource(edited),
      idColumn: 'id',
      rowHashes: [join(runDir, ROW_HASHES_FILE)],
    });
    await pipeline(resultSource([join(runDir, RESULTS_FILE)]), joined, jsonlSink(out));
    const statuses = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { status: string }).status);
    expect(statuses).toEqual(Array.from({ length: ROWS }, (_, i) => (i === 6 ? 'stale' : 'ok')));
    expect(joined.summary).toMatchObject({ checked: true, statuses: { stale: 1 } });
  });
});
