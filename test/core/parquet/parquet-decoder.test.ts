import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { beforeAll, describe, expect, it } from 'vitest';
import { parquetWasmCode } from '../../../src/core/arrow/arrow-lib.js';
import {
  type DecodePlan,
  decodeRowGroups,
  liveDecodeThreads,
} from '../../../src/core/parquet/parquet-decoder.js';
import { BatchpipeError } from '../../../src/errors.js';
import { parquetSource } from '../../../src/sources/parquet-source.js';
import { rowBatchesOf } from '../../../src/streams/row-batches.js';
import { collect, tempDir } from '../../helpers.js';
import { duckdb } from '../../support/duckdb.js';

const dir = tempDir('bp-parquet-decode-');
const GROUPS = 12;
const GROUP_ROWS = 20480;
const many = join(dir, 'many-groups.parquet');
const broken = join(dir, 'broken.parquet');
let textBytes = 0;

beforeAll(async () => {
  const db = await duckdb();
  try {
    await db.run(
      `COPY (SELECT i AS id, repeat('review text ' || i, 20) AS review FROM range(${GROUPS * GROUP_ROWS}) t(i)) TO '${many}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${GROUP_ROWS})`,
    );
    textBytes = Number((await db.rows(`SELECT sum(strlen(review)) AS bytes FROM '${many}'`))[0]!.bytes);
    await db.run(
      `COPY (SELECT i AS id, repeat('review text ' || i, 20) AS review FROM range(${3 * GROUP_ROWS}) t(i)) TO '${broken}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${GROUP_ROWS})`,
    );
    // Garbage over the third row group's review page (past its header): the footer still reads.
    const [page] = await db.rows(
      `SELECT data_page_offset AS at, total_compressed_size AS size FROM parquet_metadata('${broken}') WHERE row_group_id = 2 AND path_in_schema = 'review'`,
    );
    const fd = openSync(broken, 'r+');
    writeSync(
      fd,
      Buffer.alloc(Math.min(4096, Number(page!.size) - 64), 0xa5),
      0,
      undefined,
      Number(page!.at) + 48,
    );
    closeSync(fd);
  } finally {
    db.close();
  }
});

async function plan(path: string, more: Partial<DecodePlan> = {}): Promise<DecodePlan> {
  return {
    code: await parquetWasmCode(),
    path,
    columns: undefined,
    groups: Number((await readGroups(path)).length),
    batchRows: 4096,
    fail: (error, group) =>
      new BatchpipeError('BP_INPUT_PARSE', `row group ${group + 1}: ${(error as Error).message}`, {
        file: path,
      }),
    ...more,
  };
}

async function readGroups(path: string): Promise<unknown[]> {
  const db = await duckdb();
  try {
    return await db.rows(`SELECT DISTINCT row_group_id FROM parquet_metadata('${path}')`);
  } finally {
    db.close();
  }
}

async function decodeAll(p: DecodePlan): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const ipc of decodeRowGroups(p)) out.push(ipc as Uint8Array);
  return out;
}

describe('decodeRowGroups (Parquet decoded on worker threads)', () => {
  it('keeps file order across threads, and a fresh thread per row group decodes what one thread does', async () => {
    const recycled = await decodeAll(await plan(many, { groupsPerThread: 1 }));
    const single = await decodeAll(await plan(many, { groupsPerThread: GROUPS }));
    const ids = recycled.flatMap((ipc) => [...tableFromIPC(ipc).getChild('id')!.toArray()].map(Number));
    expect(ids).toEqual(Array.from({ length: GROUPS * GROUP_ROWS }, (_, i) => i));
    expect(recycled.length).toBe(single.length);
    for (let b = 0; b < single.length; b++)
      expect(Buffer.from(recycled[b]!).equals(Buffer.from(single[b]!))).toBe(true);
  });

  it('holds one row group at a time: each thread ends with the memory of one, far below the text', async () => {
    const each: number[] = [];
    await decodeAll(await plan(many, { groupsPerThread: 1, threadEnded: (bytes) => each.push(bytes) }));
    expect(each).toHaveLength(GROUPS);
    // Every row group is the same size: the last thread needed what the first did.
    expect(Math.max(...each)).toBeLessThanOrEqual(each[0]! * 1.25);
    expect(Math.max(...each)).toBeLessThan(textBytes * 0.5);
  });

  it('a row group that cannot be decoded fails with the error that names it, after the rows before it', async () => {
    let rows = 0;
    const failed = (async () => {
      for await (const ipc of decodeRowGroups(await plan(broken)))
        rows += tableFromIPC(ipc as Uint8Array).numRows;
    })();
    await expect(failed).rejects.toMatchObject({ code: 'BP_INPUT_PARSE', context: { file: broken } });
    await expect(failed).rejects.toThrow(/row group 3/);
    expect(rows).toBe(2 * GROUP_ROWS);
  });

  it('the source names the file and the row group', async () => {
    const failed = collect(parquetSource(broken, { name: 'reviews.parquet' }));
    await expect(failed).rejects.toMatchObject({
      code: 'BP_INPUT_PARSE',
      context: { file: 'reviews.parquet' },
    });
    await expect(failed).rejects.toThrow(/cannot read it as Parquet \(row group 3\)/);
  });

  it('stopping early ends the thread', async () => {
    const before = liveDecodeThreads();
    let during = 0;
    let rows = 0;
    for await (const batch of rowBatchesOf(parquetSource(many))) {
      rows += batch.length;
      during = Math.max(during, liveDecodeThreads());
      if (rows >= GROUP_ROWS) break;
    }
    expect(during).toBeGreaterThan(before);
    // A thread takes a moment to end: wait for it (the test times out if it never does).
    while (liveDecodeThreads() !== before) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(liveDecodeThreads()).toBe(before);
  });
});
