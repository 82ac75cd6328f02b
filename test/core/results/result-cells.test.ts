import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cellEncoder,
  cellWriter,
  decodeJsonCells,
  decodeJsonColumns,
  type JsonColumnKind,
  jsonCellTexts,
} from '../../../src/core/results/result-cells.js';

const encode = cellEncoder({ kind: 'json' });

/** Cells at the edges of both encodings: what JSON and CSV escape, quote or cannot hold, and odd numbers. */
const EDGE_CELLS: unknown[] = [
  'ok',
  '',
  'positive',
  'a,b',
  'a;b',
  'tab\there',
  'quote " and backslash \\',
  'line\nbreak',
  'line\nbreak\ttab\u0001\u001f',
  'carriage\rreturn',
  '\u0001\u001f\u007f',
  'emoji 😀 pair',
  'lone \ud800 surrogate \udfff',
  'ünïcode отлично 很好',
  '\u2028\u2029',
  0,
  -0,
  7,
  2147483647,
  2147483648,
  -1,
  1.5,
  1e21,
  -1e-7,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  null,
  undefined,
  true,
  false,
  [1, 'a'],
  { a: { b: null } },
];

describe('result cells stored as JSON', () => {
  it('hold each cell as JSON.stringify writes it (null for undefined): edge strings and numbers', () => {
    expect(jsonCellTexts(encode(EDGE_CELLS))).toEqual(EDGE_CELLS.map((c) => JSON.stringify(c ?? null)));
  });

  it('hold any string, number or JSON value as JSON.stringify writes it (property)', () => {
    const cell = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'grapheme' }),
      fc.double(),
      fc.integer(),
      fc.constantFrom(null, undefined, true, false),
      fc.jsonValue(),
    );
    fc.assert(
      fc.property(fc.array(cell, { minLength: 1, maxLength: 8 }), (cells) => {
        expect(jsonCellTexts(encode(cells))).toEqual(cells.map((c) => JSON.stringify(c ?? null)));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('decodeJsonCells', () => {
  it('decodes stored JSON cells to the values JSON.parse gives, row after row', () => {
    const rows: unknown[][] = [
      ['ok', 'positive', null, null, 120, 1],
      ['failed', '', 'rate_limit', 'quoted "text"\\ with\nbreaks\ttabs', null, null],
      ['ok', 'é日本語🙂 \u2028 \u0001', null, null, -5, 0.25],
      ['ok', 'lone \ud800 surrogate', null, null, 1e21, -1.5e-7],
      ['ok', { nested: [1, 'two', null, true] }, [3, 4], false, true, 9007199254740991],
      ['ok', '123', 'null', 'true', '-1', '"'],
    ];
    const encode = cellEncoder({ kind: 'json' });
    const stored = rows.map(encode);
    const out: unknown[] = [];
    decodeJsonCells(stored, out);
    const parsed = stored.flatMap((s) => jsonCellTexts(s).map((t) => JSON.parse(t) as unknown));
    expect(out).toEqual(parsed);
    expect(out).toEqual(rows.flat());
  });
});

describe('cellWriter', () => {
  const encodings = [
    { kind: 'json' },
    { kind: 'csv', delimiter: ',' },
    { kind: 'csv', delimiter: ';' },
    { kind: 'csv', delimiter: '\t' },
    { kind: 'csv', delimiter: 'a' },
    { kind: 'csv', delimiter: '||' },
    { kind: 'csv', delimiter: '¦' },
  ] as const;

  /** What the writer gives at offset 3 of a buffer of `size` bytes, or -1. */
  function written(encoding: (typeof encodings)[number], cells: unknown[], size = 4096): Buffer | -1 {
    const out = Buffer.alloc(size, 0xaa);
    const end = cellWriter(encoding)(cells, out, 3);
    if (end === -1) return -1;
    expect(out.subarray(0, 3).equals(Buffer.alloc(3, 0xaa))).toBe(true);
    return out.subarray(3, end);
  }

  it('writes the UTF-8 bytes of the encoded cells, or -1 only for a CSV line break, an odd delimiter or no room', () => {
    for (const encoding of encodings) {
      const text = cellEncoder(encoding);
      for (const cell of EDGE_CELLS) {
        for (const cells of [[cell], ['ok', cell, null, 3], [cell, cell]]) {
          const bytes = written(encoding, cells);
          const plainDelimiter = encoding.kind === 'json' || encoding.delimiter.length === 1;
          const odd = encoding.kind === 'csv' && (!plainDelimiter || encoding.delimiter.charCodeAt(0) > 0x7f);
          const breaks = encoding.kind === 'csv' && text(cells).startsWith('1');
          if (odd || breaks) expect(bytes).toBe(-1);
          else expect(bytes).toEqual(Buffer.from(text(cells), 'utf8'));
        }
      }
    }
    // Too little room: -1, never a cut cell.
    for (const encoding of encodings.slice(0, 2)) {
      const cells = ['ok', 'positive', null, 'ünïcode', 123456];
      const full = Buffer.byteLength(cellEncoder(encoding)(cells));
      for (let size = 3; size < 3 + full; size++) expect(written(encoding, cells, size)).toBe(-1);
      expect(written(encoding, cells, 3 + full * 3)).toEqual(Buffer.from(cellEncoder(encoding)(cells)));
    }
  });

  it('writes what cellEncoder encodes, for any cells (property)', () => {
    const cell = fc.oneof(
      fc.string({ unit: fc.constantFrom('a', ',', '"', '\n', '\r', 'é', '😀', '\\', '\u0001', ' ') }),
      fc.string({ unit: 'binary' }),
      fc.double(),
      fc.integer(),
      fc.constantFrom(null, undefined, true, false),
      fc.jsonValue(),
    );
    fc.assert(
      fc.property(
        fc.array(cell, { minLength: 1, maxLength: 8 }),
        fc.constantFrom(...encodings.slice(0, 5)),
        (cells, encoding) => {
          const bytes = written(encoding, cells);
          const text = cellEncoder(encoding)(cells);
          if (bytes === -1) expect(encoding.kind === 'csv' && text.startsWith('1')).toBe(true);
          else expect(bytes).toEqual(Buffer.from(text, 'utf8'));
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('decodeJsonColumns', () => {
  /** The column the decoded cells make (as the Arrow builder makes it from values), or undefined. */
  function expected(cells: unknown[], kind: JsonColumnKind) {
    const valid = cells.map((v) => v !== null && v !== undefined);
    const nullCount = valid.filter((v) => !v).length;
    const bits = new Uint8Array((cells.length + 7) >> 3);
    valid.forEach((v, r) => {
      if (v) bits[r >> 3]! |= 1 << (r & 7);
    });
    const nullBitmap = nullCount > 0 ? bits : undefined;
    if (kind === 'utf8') {
      if (!cells.every((v) => v === null || v === undefined || typeof v === 'string')) return undefined;
      const parts = cells.map((v) => Buffer.from(typeof v === 'string' ? v : '', 'utf8'));
      const valueOffsets = new Int32Array(cells.length + 1);
      parts.forEach((part, r) => {
        valueOffsets[r + 1] = valueOffsets[r]! + part.length;
      });
      return { nullCount, nullBitmap, valueOffsets, data: new Uint8Array(Buffer.concat(parts)) };
    }
    if (!cells.every((v) => v === null || v === undefined || /^-?\d{1,15}$/.test(String(v))))
      return undefined;
    return {
      nullCount,
      nullBitmap,
      data: BigInt64Array.from(cells, (v) => (typeof v === 'number' ? BigInt(v) : 0n)),
    };
  }

  function check(rows: unknown[][], kinds: JsonColumnKind[]): void {
    const stored = rows.map(encode);
    const columns = decodeJsonColumns(stored, kinds);
    // What the cells decode to (a number JSON cannot hold is stored as null).
    const decoded: unknown[] = [];
    decodeJsonCells(stored, decoded);
    kinds.forEach((kind, c) => {
      const want =
        kind &&
        expected(
          rows.map((_, r) => decoded[r * kinds.length + c]),
          kind,
        );
      const got = columns[c];
      if (want === undefined) expect(got).toBeUndefined();
      else {
        expect(got).toBeDefined();
        expect({ ...got, data: [...got!.data] }).toEqual({ ...want, data: [...want.data] });
      }
    });
  }

  it('reads string columns as UTF-8 and whole-number columns as int64, nulls as null bits', () => {
    const strings = EDGE_CELLS.filter((v) => typeof v === 'string');
    const rows = strings.map((text, r) => [text, r % 3 === 0 ? null : r * 1000 - 5000, 'ok']);
    rows.push([null, -999999999999999, null], ['', 999999999999999, 'ünïcode']);
    check(rows, ['utf8', 'int64', 'utf8']);
    expect(decodeJsonColumns(rows.map(encode), ['utf8', 'int64', 'utf8']).every(Boolean)).toBe(true);
  });

  it('leaves a column to the decoded cells when one of its cells is not of its kind', () => {
    // A number in a string column, a fraction or a 16-digit integer in an int64 column.
    check(
      [
        ['a', 1, 'x', 2],
        [7, 1.5, 'y', 1234567890123456],
      ],
      ['utf8', 'int64', 'utf8', 'int64'],
    );
  });

  it('agrees with the decoded cells for any strings, integers and nulls (property)', () => {
    const cell = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.constantFrom(...EDGE_CELLS),
      fc.integer(),
      fc.maxSafeInteger(),
      fc.constant(null),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(cell, cell, fc.oneof(fc.string({ unit: 'binary' }), fc.constant(null)))),
        (rows) => {
          check(rows, ['utf8', 'int64', 'utf8']);
          check(rows, [undefined, 'utf8', 'int64']);
        },
      ),
    );
  });
});
