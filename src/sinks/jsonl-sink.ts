import { ArrowRowBatch } from '../core/arrow/arrow-row-batch.js';
import { CsvRowBatch } from '../core/csv/csv-row-batch.js';
import { type JoinedLayout, JoinedRowBatch } from '../core/join/joined-row-batch.js';
import { JsonlRowBatch } from '../core/jsonl/jsonl-row-batch.js';
import { writeJsonMembers } from '../core/results/result-cells.js';
import { LINES_POOL } from '../internal/buffer-pool.js';
import { ByteWriter } from '../internal/byte-writer.js';
import type { RowValues } from '../types.js';
import { type TableOut, type TableSinkStream, tableSink } from './table-sink.js';

/**
 * Writes rows (or plain records) as JSON Lines, one object per row with the row's values as they are
 * (numbers stay numbers, embeddings stay arrays). From joinResults, a row read from JSON Lines is
 * written as its own line with the result columns added before its closing brace (numbers and escapes
 * as the source wrote them), and a row read from CSV as the JSON its text makes, written from its
 * bytes. The file is written under a temporary name and renamed into place when complete.
 */
export function jsonlSink(path: string): TableSinkStream {
  let columns: string[] | undefined;
  return tableSink(path, {
    row(values: RowValues, _place, out) {
      columns ??= Object.keys(values);
      return out.text(`${JSON.stringify(values)}\n`);
    },
    batch(rows, _written, out, eachRow) {
      if (!(rows instanceof JoinedRowBatch) || rows.layout.encoding.kind !== 'json') return eachRow();
      columns ??= [...rows.layout.columns];
      return joined(rows, out);
    },
    end: () => '',
    columns: () => columns ?? [],
  });
}

/** `,"name":` before each result column, as UTF-8, per join. */
const MEMBER_KEYS = new WeakMap<JoinedLayout, Buffer[]>();

/** A joined batch, each row written from what it was read as, its cells as members. */
async function joined(batch: JoinedRowBatch, out: TableOut): Promise<void> {
  const layout = batch.layout;
  let keys = MEMBER_KEYS.get(layout);
  if (!keys) {
    keys = layout.names.map((name) => Buffer.from(`,${JSON.stringify(name)}:`));
    MEMBER_KEYS.set(layout, keys);
  }
  const source = batch.source;
  const jsonl = source instanceof JsonlRowBatch ? source : undefined;
  const csv = source instanceof CsvRowBatch ? source : undefined;
  const columnKeys = csv ? layout.sourceColumns.map((name) => `${JSON.stringify(name)}:"`) : [];
  const arrow = source instanceof ArrowRowBatch ? arrowKeys(layout, source) : undefined;
  // The batch's lines gathered in one buffer, written at once.
  const writer = new ByteWriter(Math.ceil(((jsonl ?? csv)?.buffer.length ?? 0) * 1.5) + 4096, LINES_POOL);
  try {
    const stored = batch.cells;
    for (let i = 0; i < batch.length; i++) {
      // Each branch writes the row's opening and source members; its cells follow as members.
      let first: boolean;
      if (batch.sourceRejected(i)) {
        // The source could not read the row: its columns are empty.
        const empty = layout.sourceColumns.map((name) => `${JSON.stringify(name)}:""`).join(',');
        writer.writeText(`{${empty}`);
        first = empty === '';
      } else if (jsonl) {
        writer.writeRange(jsonl.buffer, jsonl.start(i), jsonl.closingBrace(i));
        first = jsonl.empty(i);
      } else if (csv) {
        writer.writeText('{');
        for (let c = 0; c < columnKeys.length; c++) {
          writer.writeText(c === 0 ? columnKeys[c]! : `,${columnKeys[c]!}`);
          csv.writeJsonText(i, c, writer);
          writer.writeText('"');
        }
        first = columnKeys.length === 0;
      } else if (arrow) {
        const arrowRows = source as ArrowRowBatch;
        if (arrow.length === 0) writer.writeText('{');
        for (let c = 0; c < arrow.length; c++) {
          writer.writeText(arrow[c]!);
          arrowRows.writeJsonValue(i, c, writer);
        }
        first = arrow.length === 0;
      } else {
        writer.writeText(`${JSON.stringify(batch.values(i))}\n`);
        continue;
      }
      writeJsonMembers(stored[i]!, keys, first, writer);
      const end = writer.ensure(2);
      end[writer.pos++] = 0x7d;
      end[writer.pos++] = 0x0a;
    }
    const pending = out.bytes(writer.buffer, 0, writer.pos);
    if (pending) await pending;
  } finally {
    writer.release();
  }
}

/**
 * `{"name":` then `,"name":` for each column of an Arrow source (`layout.names`, all of them, as
 * `values` gives them), when writing its rows column by column gives JSON.stringify's bytes of
 * `JoinedRowBatch.values`: no name repeated, none an array index (an object lists those first), no
 * `__proto__` (`values` does not keep it). Undefined otherwise.
 */
function arrowKeys(layout: JoinedLayout, source: ArrowRowBatch): string[] | undefined {
  const names = [...source.layout.names, ...layout.names];
  if (layout.uneven || new Set(names).size !== names.length) return undefined;
  if (names.some((name) => name === '__proto__' || /^(?:0|[1-9][0-9]*)$/.test(name))) return undefined;
  return source.layout.names.map((name, c) => `${c === 0 ? '{' : ','}${JSON.stringify(name)}:`);
}
