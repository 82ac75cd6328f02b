import { z } from 'zod';
import { ArrowRowBatch } from '../core/arrow/arrow-row-batch.js';
import { csvCell, writeUtf8Field } from '../core/csv/csv-cell.js';
import { CsvRowBatch } from '../core/csv/csv-row-batch.js';
import { JoinedRowBatch } from '../core/join/joined-row-batch.js';
import { JsonlRowBatch } from '../core/jsonl/jsonl-row-batch.js';
import { csvTail } from '../core/results/result-cells.js';
import { ColumnMemory } from '../core/rows/column-buffers.js';
import { ownValue } from '../core/rows/own-value.js';
import { delimiterOf } from '../core/tables/table-format.js';
import { BatchpipeError } from '../errors.js';
import { ByteWriter } from '../internal/byte-writer.js';
import { parseOptions } from '../options.js';
import { kPreferCells } from '../streams/batch-protocol.js';
import type { RowValues } from '../types.js';
import { type RowPlace, type TableOut, type TableSinkStream, tableSink } from './table-sink.js';

export type { SinkSummary, TableSinkStream } from './table-sink.js';

const CsvSinkOptions = z.strictObject({
  /** Columns, in order; keys of a row not among them are left out. Default: the first row's keys (then a later row with a key the header lacks is an error). */
  columns: z.array(z.string()).min(1).optional(),
  /** Field delimiter, one character. Default ",", or a tab for paths ending in .tsv. */
  delimiter: z.string().length(1).optional(),
  /** Write the header row. Default true. */
  header: z.boolean().default(true),
  /** Start the file with a UTF-8 byte order mark (for spreadsheet programs). Default false. */
  bom: z.boolean().default(false),
});
export type CsvSinkOptions = z.input<typeof CsvSinkOptions>;

const LF = '\n';
/** Gathered rows are appended to the file once they reach this many bytes. */
const LINES_FLUSH = 256 * 1024;

/**
 * Writes rows (or plain records) as CSV: fields holding the delimiter, quotes or line breaks are
 * quoted, quotes doubled (csv-stringify's rule); null and undefined are empty, objects and arrays
 * JSON. The header is the first row's columns (or `columns`); later rows are written under it, missing
 * values empty. Without `columns`, a later row with a key the header lacks fails the stream with
 * BP_USAGE naming the row and the column (its value would be lost; joinResults gives every row every
 * column). From joinResults, a row read from CSV in the same dialect is written as its own bytes with
 * the result cells after them. The file is written under a temporary name and renamed into place when
 * complete.
 */
export function csvSink(path: string, options: CsvSinkOptions = {}): TableSinkStream {
  const opts = parseOptions(CsvSinkOptions, options, 'csvSink');
  const delimiter = delimiterOf(opts.delimiter, undefined, path);
  let columns = opts.columns;
  /** The header's names, to catch keys it lacks; none when the caller chose the columns. */
  let header: Set<string> | undefined;
  let started = false;
  /** A JSON Lines source's text columns, batch after batch in the same buffers (a batch is written before the next). */
  const memory = new ColumnMemory();
  const headerText = (): string =>
    (opts.bom ? '\ufeff' : '') +
    (opts.header ? columns!.map((c) => csvCell(c, delimiter)).join(delimiter) + LF : '');
  /** The header before the first row. */
  const start = (first: RowValues | readonly string[], out: TableOut): Promise<void> | undefined => {
    if (started) return undefined;
    started = true;
    if (columns === undefined) {
      columns = Array.isArray(first) ? [...first] : Object.keys(first);
      header = new Set(columns);
    }
    return out.text(headerText());
  };

  const row = (values: RowValues, place: RowPlace, out: TableOut): Promise<void> | undefined => {
    const waiting = start(values, out);
    if (waiting) return waiting.then(() => row(values, place, out));
    const names = columns!;
    if (header) for (const key in values) if (!header.has(key)) throw notInHeader(key, place, names);
    let line = '';
    for (let c = 0; c < names.length; c++) {
      if (c > 0) line += delimiter;
      line += csvCell(ownValue(values, names[c]!), delimiter);
    }
    return out.text(line + LF);
  };

  /** A joined batch: each row's own CSV bytes where they read back the same, then its cells. */
  const joined = async (batch: JoinedRowBatch, out: TableOut): Promise<void> => {
    const layout = batch.layout;
    const waiting = start(layout.columns, out);
    if (waiting) await waiting;
    const source = batch.source;
    const cellsAsCsv = layout.encoding.kind === 'csv' && layout.encoding.delimiter === delimiter;
    const width = layout.sourceColumns.length;
    const emptySource = width > 1 ? delimiter.repeat(width - 1) : '';
    const delimiterByte = delimiter.charCodeAt(0);
    if (source instanceof ArrowRowBatch && delimiterByte < 0x80) {
      // A row's cell of a name (the last column of that name, as `texts` gives it), or none: empty.
      const columns = layout.sourceColumns.map((name) => source.layout.names.lastIndexOf(name));
      return cellsJoined(batch, cellsAsCsv, emptySource, out, (i, c, w) => {
        const column = columns[c]!;
        if (column !== -1) source.writeCsvCell(i, column, delimiterByte, w);
      });
    }
    if (source instanceof JsonlRowBatch && delimiterByte < 0x80) {
      // Each line scanned once for every column; a column the scan cannot make (a dotted name, one
      // of Object.prototype's) from the row's values.
      // The last batch's columns are written: their buffers take this one's.
      memory.reuse();
      const columns = source.utf8Columns(layout.sourceColumns, batch.unreadEntries, memory);
      return cellsJoined(batch, cellsAsCsv, emptySource, out, (i, c, w) => {
        const column = columns[c];
        if (column === undefined)
          w.writeText(csvCell(ownValue(source.values(i), layout.sourceColumns[c]!), delimiter));
        else if (column.nullBitmap === undefined || (column.nullBitmap[i >> 3]! & (1 << (i & 7))) !== 0)
          writeUtf8Field(column.data, column.valueOffsets[i]!, column.valueOffsets[i + 1]!, delimiterByte, w);
      });
    }
    const copies =
      source instanceof CsvRowBatch && source.layout.delimiter === delimiter && source.layout.quote === '"';
    for (let i = 0; i < batch.length; i++) {
      const tail = cellsAsCsv ? batch.csvTail(i) : csvTail(batch.resultCells(i), delimiter);
      let pending: Promise<void> | undefined;
      if (batch.sourceRejected(i)) {
        // Empty source fields; with no readable row at all there are no source columns.
        pending = out.text(width === 0 ? tail.slice(delimiter.length) + LF : emptySource + tail + LF);
      } else if (copies && (source as CsvRowBatch).copiesCleanly(i)) {
        const csv = source as CsvRowBatch;
        pending = out.bytes(csv.buffer, csv.rowStart(i), csv.rowEnd(i));
        if (pending) await pending;
        pending = out.text(tail + LF);
      } else {
        // Arrow cells as text by the type rules (exact decimals and int64, ISO timestamps, JSON).
        const values = source instanceof ArrowRowBatch ? source.texts(i) : source.values(i);
        let line = '';
        for (let c = 0; c < width; c++) {
          if (c > 0) line += delimiter;
          line += csvCell(ownValue(values, layout.sourceColumns[c]!), delimiter);
        }
        pending = out.text(width === 0 ? tail.slice(delimiter.length) + LF : line + tail + LF);
      }
      if (pending) await pending;
    }
  };

  /** Reused batch after batch: rows are gathered in it and appended to the file a piece at a time. */
  let lines: ByteWriter | undefined;

  /**
   * A joined batch whose source cells are written as CSV straight from their bytes (Parquet and Arrow
   * columns, JSON Lines members): `writeCell` appends row i's source cell c, nothing for null.
   */
  const cellsJoined = async (
    batch: JoinedRowBatch,
    cellsAsCsv: boolean,
    emptySource: string,
    out: TableOut,
    writeCell: (i: number, c: number, w: ByteWriter) => void,
  ): Promise<void> => {
    const layout = batch.layout;
    const delimiterByte = delimiter.charCodeAt(0);
    const width = layout.sourceColumns.length;
    lines ??= new ByteWriter(LINES_FLUSH + 64 * 1024);
    const w = lines;
    w.pos = 0;
    for (let i = 0; i < batch.length; i++) {
      const tail = cellsAsCsv ? batch.csvTail(i) : csvTail(batch.resultCells(i), delimiter);
      if (width === 0) w.writeText(tail.slice(delimiter.length) + LF);
      else if (batch.sourceRejected(i)) w.writeText(emptySource + tail + LF);
      else {
        for (let c = 0; c < width; c++) {
          if (c > 0) w.ensure(1)[w.pos++] = delimiterByte;
          writeCell(i, c, w);
        }
        w.writeText(tail);
        w.ensure(1)[w.pos++] = 0x0a;
      }
      if (w.pos >= LINES_FLUSH || i === batch.length - 1) {
        const pending = out.bytes(w.buffer, 0, w.pos);
        // The file copies the bytes (or has written them once this resolves): the buffer is free again.
        if (pending) await pending;
        w.pos = 0;
      }
    }
  };

  /** Rows read from Parquet or Arrow: their cells as text by the type rules (docs/formats.md). */
  const arrowRows = async (rows: ArrowRowBatch, written: number, out: TableOut): Promise<void> => {
    for (let i = 0; i < rows.length; i++) {
      const place = { written: written + i + 1, row: rows.index(i), file: rows.file(), line: rows.line(i) };
      const pending = row(rows.texts(i), place, out);
      if (pending) await pending;
    }
  };

  const stream = tableSink(path, {
    row,
    batch(rows, written, out, eachRow) {
      // Chosen columns are written as asked, whatever the rows hold.
      if (rows instanceof JoinedRowBatch && opts.columns === undefined) return joined(rows, out);
      if (rows instanceof ArrowRowBatch) return arrowRows(rows, written, out);
      return eachRow();
    },
    end() {
      // No rows: the header alone when the columns are known.
      if (started) return '';
      started = true;
      return columns === undefined ? (opts.bom ? '\ufeff' : '') : headerText();
    },
    columns: () => columns ?? [],
  });
  // A join piped into this sink stores its cells as this sink's CSV text.
  stream.on('pipe', (source) => {
    (source as { [kPreferCells]?: (encoding: { kind: 'csv'; delimiter: string }) => void })[kPreferCells]?.({
      kind: 'csv',
      delimiter,
    });
  });
  return stream;
}

function notInHeader(column: string, at: RowPlace, columns: string[]): BatchpipeError {
  const source = at.row === undefined ? '' : ` (source row ${at.row})`;
  const listed = `${columns.slice(0, 20).join(', ')}${columns.length > 20 ? ', ...' : ''}`;
  return new BatchpipeError(
    'BP_USAGE',
    `csvSink: row ${at.written}${source} has a column "${column}" that the header, taken from the first row, lacks (${listed}); its value would be lost. Pass "columns" to choose the columns, or give every row the same keys`,
    { file: at.file, line: at.line, row: at.row ?? at.written, column },
  );
}
