import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadArrow } from '../../../src/core/arrow/arrow-lib.js';
import { ArrowLayout, ArrowRowBatch } from '../../../src/core/arrow/arrow-row-batch.js';
import { readParquetBatches } from '../../../src/core/parquet/parquet-reader.js';
import { RENDER_THREAD_AFTER_ROWS } from '../../../src/core/requests/request-maker.js';
import { ByteWriter } from '../../../src/internal/byte-writer.js';
import { prepare } from '../../../src/jobs/prepare.js';
import { tempDir } from '../../helpers.js';
import { duckdb } from '../../support/duckdb.js';

const dir = tempDir('bp-arrow-transport-');
const file = join(dir, 'mixed.parquet');
// Past the rows rendered on the main thread, so most lines are rendered on a render thread.
const ROWS = 40_000;

/** The title of row i as the table holds it: null, empty, or multi-byte text with characters to escape. */
function title(i: number): string | null {
  if (i % 7 === 0) return null;
  if (i % 11 === 0) return '';
  return `Título ${i} — 日本語 🎉 "q" \\ \t end`;
}

beforeAll(async () => {
  const db = await duckdb();
  try {
    await db.run(
      `COPY (SELECT i AS id,
         CASE WHEN i % 7 = 0 THEN NULL WHEN i % 11 = 0 THEN '' ELSE 'Título ' || i || ' — 日本語 🎉 "q" \\ ' || chr(9) || ' end' END AS title,
         repeat('review ' || i || ' ', (i % 5) + 1) AS review,
         CASE WHEN i % 5 = 0 THEN NULL ELSE (i / 4)::DOUBLE END AS score,
         i % 3 = 0 AS flag
       FROM range(${ROWS}) t(i)) TO '${file}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 12288)`,
    );
  } finally {
    db.close();
  }
});

describe('Arrow batches crossing to a thread', () => {
  it('a page decoder batch rebuilt from its transport (cloned, as posting it does) reads the same cells', async () => {
    await loadArrow();
    let rows = 0;
    let decodedBy = '';
    for await (const batch of readParquetBatches(file, file, { decodedBy: (d) => (decodedBy = d) })) {
      const transport = batch.transport();
      expect(transport).toBeDefined();
      const copy = ArrowRowBatch.from(structuredClone(transport!));
      expect(copy.length).toBe(batch.length);
      // Each row's cells as text and as the JSON text a template writes, from either batch.
      const cells = (b: ArrowRowBatch) => {
        const out: unknown[] = [];
        for (let i = 0; i < b.length; i++) {
          const writer = new ByteWriter(16);
          for (const name of ['title', 'review', 'score', 'flag']) b.writeJsonText(i, b.ref(name)!, writer);
          out.push(
            b.index(i),
            b.texts(i),
            Buffer.from(writer.buffer.subarray(0, writer.pos)).toString('latin1'),
          );
        }
        return out;
      };
      expect(cells(copy)).toEqual(cells(batch));
      rows += batch.length;
    }
    expect(decodedBy).toBe('pages');
    expect(rows).toBe(ROWS);
  });

  it('a batch whose memory is not shared has no transport (it is rendered where it is)', async () => {
    const arrow = await loadArrow();
    const table = arrow.tableFromArrays({ title: ['a', 'b', 'ü'] });
    const batch = new ArrowRowBatch(
      new ArrowLayout(table.schema),
      table.batches[0]!.data.children,
      3,
      'x',
      1,
    );
    expect(batch.transport()).toBeUndefined();
  });

  it('prepare renders every line as the table holds it, on the main thread and on a render thread alike', async () => {
    expect(ROWS).toBeGreaterThan(RENDER_THREAD_AFTER_ROWS * 2);
    const outDir = join(dir, 'prepared');
    const result = await prepare(file, {
      outDir,
      template: '{{title}}|{{review}}|{{score}}|{{flag}}',
      idColumn: 'id',
      model: 'qwen-plus',
    });
    expect(result.requests).toBe(ROWS);
    const lines = result.shards.flatMap((s) =>
      readFileSync(join(outDir, s.file), 'utf8').trimEnd().split('\n'),
    );
    expect(lines).toHaveLength(ROWS);
    for (let i = 0; i < ROWS; i++) {
      const line = JSON.parse(lines[i]!) as {
        custom_id: string;
        body: { messages: Array<{ content: string }> };
      };
      expect(line.custom_id).toBe(String(i));
      const review = `review ${i} `.repeat((i % 5) + 1);
      const score = i % 5 === 0 ? '' : String(i / 4);
      expect(line.body.messages.at(-1)!.content).toBe(`${title(i) ?? ''}|${review}|${score}|${i % 3 === 0}`);
    }
  });
});
