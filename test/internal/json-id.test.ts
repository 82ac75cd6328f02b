import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_ESCAPE_GROWTH, writeJsonId } from '../../src/internal/json-bytes.js';

describe('writeJsonId', () => {
  it("writes JSON.stringify's bytes for any id, quoted or not, at any offset (property)", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'grapheme-ascii' }),
          fc.string({ unit: 'binary' }),
          fc.string({ unit: fc.constantFrom('a', '"', '\\', '\n', '\u0001', 'é', '😀', '\ud800') }),
        ),
        fc.boolean(),
        fc.nat(16),
        (id, quoted, at) => {
          const to = Buffer.alloc(at + id.length * MAX_ESCAPE_GROWTH + 2, 0xaa);
          const end = writeJsonId(to, at, id, quoted);
          const json = JSON.stringify(id);
          expect(to.toString('utf8', at, end)).toBe(quoted ? json : json.slice(1, -1));
          // Nothing before `at` is touched.
          expect(to.subarray(0, at).every((b) => b === 0xaa)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
