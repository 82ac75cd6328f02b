import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { CsvSettings } from '../../src/core/csv/csv-reader.js';
import type { TableFormat } from '../../src/core/tables/table-format.js';
import { estimateRows } from '../../src/jobs/row-estimate.js';
import type { TableSettings } from '../../src/jobs/settings.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('bp-row-estimate-');
const table = (format: TableFormat, quote = '"'): TableSettings => ({
  file: 'table',
  format,
  csv: { quote } as CsvSettings,
  jsonl: { badRows: 'reject', bigIntegers: 'string', maxRowSize: 1 << 20 } as TableSettings['jsonl'],
});
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('estimateRows', () => {
  it('counts the rows of a file within its first MiB exactly, a newline inside a CSV quote not a row', async () => {
    const csv = file('small.csv', 'id,text\n1,"two\nlines"\n2,"a ""quoted"" word"\n3,last');
    expect(await estimateRows(csv, table('csv'))).toBe(4);
    const tsv = file('small.tsv', "id\ttext\n1\t'x\ny'\n");
    expect(await estimateRows(tsv, table('tsv', "'"))).toBe(2);
    const jsonl = file('small.jsonl', '{"a":1}\n{"a":"b\\nc"}\n');
    expect(await estimateRows(jsonl, table('jsonl'))).toBe(2);
  });

  it('estimates a larger file from the rows in its first MiB', async () => {
    const rows = 40_000;
    const text = Array.from({ length: rows }, (_, i) => `${i},"${'x'.repeat(40 + (i % 20))}"\n`).join('');
    const estimate = await estimateRows(file('large.csv', text), table('csv'));
    expect(Buffer.byteLength(text)).toBeGreaterThan(2 * 1024 * 1024);
    expect(estimate).toBeGreaterThan(rows * 0.95);
    expect(estimate).toBeLessThan(rows * 1.05);
  });

  it('says nothing of a stream, a columnar table, an empty or a missing file', async () => {
    expect(await estimateRows(Readable.from(['a\n']), table('csv'))).toBeUndefined();
    expect(await estimateRows(file('t.parquet', 'PAR1'), table('parquet'))).toBeUndefined();
    expect(await estimateRows(file('empty.csv', ''), table('csv'))).toBeUndefined();
    expect(await estimateRows(join(dir, 'missing.csv'), table('csv'))).toBeUndefined();
  });
});
