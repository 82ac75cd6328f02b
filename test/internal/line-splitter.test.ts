import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/internal/line-splitter.js';

/** The lines of `bytes` cut into chunks at `cuts`, as a splitter hands them out. */
function split(bytes: Buffer, cuts: number[], max = 1 << 20) {
  const splitter = new LineSplitter('f.jsonl', max);
  const lines = [];
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    lines.push(...splitter.split(bytes.subarray(at, cut), false));
    at = cut;
  }
  lines.push(...splitter.split(bytes.subarray(at), true));
  return { lines, bom: splitter.byteOrderMark };
}

describe('LineSplitter', () => {
  it('finds the same lines wherever the chunks are cut: CRLF, a byte-order mark, multi-byte characters (property)', () => {
    const text = fc.array(fc.string({ unit: fc.constantFrom('a', 'é', '😀', '\r', ' ', '{') }), {
      maxLength: 6,
    });
    fc.assert(
      fc.property(text, fc.boolean(), fc.array(fc.nat(), { maxLength: 5 }), (rows, bom, cuts) => {
        const body = Buffer.from(rows.join('\n'));
        const bytes = bom ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]) : body;
        const { lines, bom: sawBom } = split(
          bytes,
          cuts.map((c) => c % (bytes.length + 1)),
        );
        const joined = rows.join('\n');
        // A final newline ends the last line; nothing after it is a line.
        const expected = joined === '' ? [] : joined.split('\n');
        if (joined.endsWith('\n')) expected.pop();
        expect(lines.map((l) => l.text)).toEqual(
          expected.map((r) => (r.endsWith('\r') ? r.slice(0, -1) : r)),
        );
        expect(lines.map((l) => l.line)).toEqual(expected.map((_, i) => i + 1));
        expect(lines.map((l) => l.bytes)).toEqual(
          expected.map((r) => Buffer.byteLength(r.endsWith('\r') ? r.slice(0, -1) : r)),
        );
        expect(sawBom).toBe(bom && bytes.length >= 3);
      }),
    );
  });

  it('marks a line that is not UTF-8 and stops at a line over the limit, naming its number', () => {
    const { lines } = split(Buffer.from([0x61, 0x0a, 0xff, 0x62, 0x0a, 0x63]), [2]);
    expect(lines.map((l) => [l.line, l.utf8])).toEqual([
      [1, true],
      [2, false],
      [3, true],
    ]);
    expect(() => split(Buffer.from('ok\nmuch too long\nx'), [4], 5)).toThrow(
      expect.objectContaining({ code: 'BP_ROW_TOO_LARGE', context: { file: 'f.jsonl', line: 2 } }),
    );
  });
});
