import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../../src/internal/byte-writer.js';
import { writeJsonText } from '../../src/internal/json-bytes.js';
import { writeJson } from '../../src/internal/json-writer.js';

/** What writeJson writes for `value`, from a writer that starts small (so every write may grow it). */
function written(value: object, shared = false): string {
  const start = shared ? Buffer.from(new SharedArrayBuffer(8)) : Buffer.alloc(8);
  const out = new ByteWriter(0, undefined, start);
  out.writeText('>');
  writeJson(out, value);
  return out.buffer.toString('utf8', 1, out.pos);
}

/** The reference: JSON.stringify's text, as UTF-8 (a lone surrogate is escaped by it, so it survives). */
function expected(value: object): string {
  return JSON.stringify(value);
}

const texts = fc.string({
  unit: fc.oneof(
    fc.constantFrom('a', 'é', '😀', '日', '"', '\\', '\n', '\t', '\u0000', '\u001f', '\u007f', '\u2028'),
    fc.constantFrom('\ufffd', '\ud800', '\udfff', '\uffff', '\uff0c'),
    fc.string({ unit: 'grapheme', maxLength: 3 }),
  ),
  maxLength: 40,
});

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

/** Values JSON.stringify treats its own way: left out, made null, or through toJSON. */
const odd = fc.constantFrom<unknown>(
  undefined,
  () => 1,
  Symbol('s'),
  Number.NaN,
  Number.POSITIVE_INFINITY,
  -0,
  new Date(0),
  { toJSON: (key: string) => `key ${key}` },
  new Point(1, 2),
  new Map([[1, 2]]),
  new Uint8Array([1, 2]),
  Object.assign(Object.create(null) as object, { a: 1 }),
  // biome-ignore lint/suspicious/noSparseArray: a hole is what is tested
  [1, , 3],
  Object.assign([1, 2], { extra: true }),
);

const values = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    texts,
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    odd,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(texts, tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('writeJson', () => {
  it('writes the bytes JSON.stringify makes, for any value (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(texts, values, { maxKeys: 5 }), fc.boolean(), (value, shared) => {
        expect(written(value, shared)).toBe(expected(value));
      }),
      { numRuns: 2000 },
    );
  });

  it('escapes strings with more escapes than it moves in place, and long strings of every kind', () => {
    const many = '"\\\n'.repeat(100);
    const long = `${'日本語のレビュー '.repeat(500)}"quoted" 😀\u0001`;
    for (const text of [many, long, `${long}\ud83d`, `\ufffd${long}`, 'x'.repeat(70_000)]) {
      const value = { custom_id: 'row-1', body: { messages: [{ role: 'user', content: text }] } };
      expect(written(value)).toBe(expected(value));
    }
  });

  it('writes nesting past the depth limit, and a toJSON deep inside, as JSON.stringify does', () => {
    let deep: object = { leaf: 'x' };
    for (let i = 0; i < 200; i++) deep = { next: deep, list: [i] };
    expect(written(deep)).toBe(expected(deep));
    const dated = { a: [{ b: { when: new Date(86_400_000) } }] };
    expect(written(dated)).toBe(expected(dated));
  });

  it('writes a cell between quotes as JSON.stringify escapes it (property)', () => {
    fc.assert(
      fc.property(texts, fc.boolean(), (text, shared) => {
        const out = new ByteWriter(
          0,
          undefined,
          shared ? Buffer.from(new SharedArrayBuffer(4)) : Buffer.alloc(4),
        );
        out.writeText('>');
        writeJsonText(out, text);
        expect(out.buffer.toString('utf8', 1, out.pos)).toBe(JSON.stringify(text).slice(1, -1));
      }),
      { numRuns: 2000 },
    );
  });

  it('throws where JSON.stringify throws (a bigint, a cycle)', () => {
    expect(() => written({ n: 1n })).toThrow(TypeError);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => written(cycle)).toThrow(TypeError);
  });
});
