import { createReadStream, openAsBlob, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tableFromIPC } from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { joinTable } from '../../src/jobs/join-table.js';
import { arrowSink } from '../../src/sinks/arrow-sink.js';
import { arrowSource } from '../../src/sources/arrow-source.js';
import { parquetSource } from '../../src/sources/parquet-source.js';
import type { Row } from '../../src/types.js';
import { collect, tempDir } from '../helpers.js';
import { duckdb } from '../support/duckdb.js';
import { expectedValues, ROWS, TYPES_SELECT } from '../support/parquet-types.js';
import { answerLine } from '../support/results.js';

const dir = tempDir('bp-arrow-');
let source: string;

beforeAll(async () => {
  const db = await duckdb();
  source = join(dir, 'types.parquet');
  await db.run(`COPY (${TYPES_SELECT}) TO '${source}' (FORMAT parquet, ROW_GROUP_SIZE 2048)`);
  db.close();
}, 60_000);

/** The same rows read back from a file batchpipe wrote: every type as parquetSource read it. */
async function expectSameRows(path: string): Promise<void> {
  const rows = await collect<Row>(arrowSource(path));
  expect(rows).toHaveLength(ROWS);
  for (const i of [0, 1, 3, 2047, 2048, ROWS - 1]) expect(rows[i]!.values).toEqual(expectedValues(i));
}

describe('arrowSink and arrowSource', () => {
  it.each([
    ['file', 'types.arrow'],
    ['file', 'types.feather'],
    ['stream', 'types.arrows'],
  ] as const)('write the %s format (%s) with every type kept, and read it back', async (format, name) => {
    const out = join(dir, name);
    await pipeline(parquetSource(source), arrowSink(out));
    // apache-arrow reads the whole file on its own: the file or stream layout the extension names.
    const bytes = readFileSync(out);
    expect(bytes.subarray(0, 6).toString('latin1') === 'ARROW1').toBe(format === 'file');
    const table = tableFromIPC(bytes);
    expect(table.numRows).toBe(ROWS);
    expect(String(table.schema.fields.find((f) => f.name === 'ts_tz')!.type)).toBe(
      'Timestamp<MICROSECOND, UTC>',
    );
    expect(String(table.schema.fields.find((f) => f.name === 'dec38')!.type)).toMatch(/Decimal/);
    expect(table.getChild('id')!.get(5)).toBe(9007199254740998n);
    await expectSameRows(out);
  });

  it('reads the stream format from a byte stream', async () => {
    const out = join(dir, 'piped.arrows');
    await pipeline(parquetSource(source), arrowSink(out));
    const rows = await collect<Row>(arrowSource(createReadStream(out)));
    expect(rows).toHaveLength(ROWS);
    expect(rows[42]!.values).toEqual(expectedValues(42));
  });

  it('joins an Arrow source into Arrow and Parquet, cross-checked through parquet-wasm', async () => {
    const arrowIn = join(dir, 'in.arrow');
    await pipeline(parquetSource(source), arrowSink(arrowIn));
    const lines = Array.from({ length: ROWS }, (_, i) =>
      answerLine({ custom_id: String(9007199254740993n + BigInt(i)), content: `answer ${i}`, n: i }),
    );
    const results = join(dir, 'results.jsonl');
    await pipeline(
      Readable.from([`${lines.join('\n')}\n`]),
      (await import('node:fs')).createWriteStream(results),
    );
    const arrowOut = join(dir, 'joined.arrows');
    const parquetOut = join(dir, 'joined.parquet');
    await joinTable({ source: arrowIn, results: [results], out: arrowOut, idColumn: 'id' });
    await joinTable({ source: arrowIn, results: [results], out: parquetOut, idColumn: 'id' });
    const arrowTable = tableFromIPC(readFileSync(arrowOut));
    // parquet-wasm reads the Parquet file into Arrow: the same schema and the same values.
    const pf = await ParquetFile.fromFile(await openAsBlob(parquetOut));
    const parquetTable = tableFromIPC((await pf.read()).intoIPCStream());
    expect(parquetTable.numRows).toBe(ROWS);
    expect(parquetTable.schema.fields.map((f) => `${f.name}:${f.type}`)).toEqual(
      arrowTable.schema.fields.map((f) => `${f.name}:${f.type}`),
    );
    for (const name of ['id', 'txt', 'content', 'status', 'prompt_tokens', 'dec38', 'ts_ns']) {
      for (const i of [0, 7, ROWS - 1]) {
        expect(String(parquetTable.getChild(name)!.get(i)), `${name} ${i}`).toBe(
          String(arrowTable.getChild(name)!.get(i)),
        );
      }
    }
    expect(arrowTable.getChild('content')!.get(9)).toBe('answer 9');
    expect(arrowTable.getChild('prompt_tokens')!.get(9)).toBe(20n);
  });
});
