import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csvSink } from '../../src/sinks/csv-sink.js';
import { row, settled, tempDir } from '../helpers.js';

const dir = tempDir('bp-csv-sink-');
let files = 0;
const path = (ext = 'csv') => join(dir, `out-${++files}.${ext}`);

async function write(items: unknown[], options: Parameters<typeof csvSink>[1] = {}, to = path()) {
  const sink = csvSink(to, options);
  await pipeline(Readable.from(items), sink);
  return { text: readFileSync(to, 'utf8'), summary: sink.summary!, to };
}

describe('csvSink', () => {
  it('round-trips any text through csv-parse: quotes, delimiters, CR, LF, unicode (property)', async () => {
    const cell = fc.string({
      unit: fc.constantFrom('a', ' ', ',', '"', '\n', '\r', '\r\n', ';', 'é', '😀', '\t', "'"),
      maxLength: 15,
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(cell, cell, cell), { minLength: 1, maxLength: 20 }),
        async (cells) => {
          const rows = cells.map(([a, b, c], i) => row(i + 1, { a, 'b "quoted", name': b, c }));
          const { text } = await write(rows);
          const back = parse(text, { columns: true, relax_column_count: false }) as Record<string, string>[];
          expect(back).toEqual(rows.map((r) => r.values));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('takes the header from the first row: later rows are written under it, missing values empty', async () => {
    const { text, summary } = await write([{ a: 1, b: 'x' }, row(2, { b: 'y' }), { a: null }]);
    expect(text).toBe('a,b\n1,x\n,y\n,\n');
    expect(summary).toMatchObject({ rows: 3, columns: ['a', 'b'] });
  });

  it('no longer drops a column only later rows have: it fails naming the row and the column', async () => {
    const to = path();
    const first = Array.from({ length: 1500 }, (_, i) => row(i + 1, { a: i }, 'uneven.jsonl'));
    const error = await write([...first, row(1501, { a: 2, b: 'extra' }, 'uneven.jsonl')], {}, to).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: 'BP_USAGE',
      context: { file: 'uneven.jsonl', row: 1501, column: 'b' },
    });
    expect((error as Error).message).toMatch(
      /^uneven\.jsonl:1502: csvSink: row 1501 \(source row 1501\) has a column "b" that the header, taken from the first row, lacks \(a\); its value would be lost/,
    );
    // Nothing half-written is left under the name.
    expect(existsSync(to)).toBe(false);
    // Plain records are named by their place in the output.
    await expect(write([{ a: 1 }, { a: 2 }, { c: 3 }])).rejects.toThrow(
      /^csvSink: row 3 has a column "c" that the header/,
    );
    // Chosen columns are a choice: other keys are left out.
    const chosen = await write([{ a: 1 }, { a: 2, b: 'extra' }], { columns: ['a'] });
    expect(chosen.text).toBe('a\n1\n2\n');
  });

  it('writes null as empty, numbers and booleans as text, objects and arrays as JSON', async () => {
    const { text } = await write([
      { n: null, u: undefined, i: 42, f: 0.5, t: true, big: 12n, o: { k: 'v' }, v: [1, 2] },
    ]);
    expect(parse(text, { columns: true })).toEqual([
      { n: '', u: '', i: '42', f: '0.5', t: 'true', big: '12', o: '{"k":"v"}', v: '[1,2]' },
    ]);
  });

  it('takes columns, a delimiter (tab for .tsv), no header, and a byte order mark', async () => {
    expect((await write([{ a: 'x\ty', b: 'z' }], {}, path('tsv'))).text).toBe('a\tb\n"x\ty"\tz\n');
    expect((await write([{ a: 1, b: 2 }], { columns: ['b', 'a'], header: false })).text).toBe('2,1\n');
    expect((await write([{ a: 1 }], { bom: true })).text).toBe('\ufeffa\n1\n');
    expect((await write([], { columns: ['a', 'b'] })).text).toBe('a,b\n');
    expect((await write([])).text).toBe('');
  });

  it('writes under a temporary name and renames when complete; a failed run leaves no file', async () => {
    const to = path();
    const sink = csvSink(to);
    sink.write({ a: 1 });
    expect(existsSync(to)).toBe(false);
    await expect(
      pipeline(
        Readable.from(
          (function* () {
            yield { a: 2 };
            throw new Error('upstream failed');
          })(),
        ),
        csvSink(to),
      ),
    ).rejects.toThrow('upstream failed');
    expect(existsSync(to)).toBe(false);
    sink.destroy();
    await settled(() => !readdirSync(dir).some((f) => f.endsWith('.partial')));
    expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  it('refuses a rejection rather than dropping a row', async () => {
    const rejection = {
      kind: 'rejection',
      index: 3,
      file: 'f',
      line: 4,
      custom_id: null,
      code: 'BP_INPUT_PARSE',
      message: 'bad',
    };
    await expect(write([rejection])).rejects.toMatchObject({ code: 'BP_USAGE' });
  });
});
