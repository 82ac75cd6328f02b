import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { customIdFor, joinKeyOf, MAX_CUSTOM_ID_CHARS } from '../../../src/core/requests/custom-id.js';
import { codePointLength } from '../../../src/internal/code-points.js';

const sha = (text: string) => `sha256-${createHash('sha256').update(text).digest('hex')}`;

describe('customIdFor', () => {
  it('is row-<n> without a key', () => {
    expect(customIdFor(7)).toBe('row-7');
  });

  it('is the key verbatim as text', () => {
    expect(customIdFor(1, 'A-17 ')).toBe('A-17 ');
    expect(customIdFor(1, 42)).toBe('42');
    expect(customIdFor(1, 12345678901234567890n)).toBe('12345678901234567890');
    expect(customIdFor(1, '键-😀')).toBe('键-😀');
  });

  it('derives row-<n> for an empty or null key', () => {
    expect(customIdFor(3, '')).toBe('row-3');
    expect(customIdFor(3, null)).toBe('row-3');
  });

  // ref/modelstudio-batch-file-input.txt: "The custom_id supports a maximum of 256 characters. If this
  // limit is exceeded, the task validation fails." Characters, not UTF-8 bytes nor UTF-16 units.
  it('keeps a key of 256 characters verbatim, however many bytes or UTF-16 units it takes', () => {
    for (const key of [
      'x'.repeat(256),
      '键'.repeat(256),
      '😀'.repeat(256),
      `${'😀'.repeat(200)}${'é'.repeat(56)}`,
    ]) {
      expect(codePointLength(key)).toBe(MAX_CUSTOM_ID_CHARS);
      expect(customIdFor(1, key)).toBe(key);
    }
    // 768 UTF-8 bytes and 512 UTF-16 units, both over 256: still 256 characters.
    expect(Buffer.byteLength('键'.repeat(256))).toBe(768);
    expect('😀'.repeat(256).length).toBe(512);
  });

  it('derives sha256-<hex> for a key of 257 characters, so a join can recompute it', () => {
    for (const key of ['x'.repeat(257), '键'.repeat(257), '😀'.repeat(257)]) {
      const derived = customIdFor(1, key);
      expect(derived).toBe(sha(key));
      expect(derived.length).toBeLessThanOrEqual(MAX_CUSTOM_ID_CHARS);
      expect(customIdFor(99, key)).toBe(derived);
    }
  });

  it('counts a lone surrogate as one character', () => {
    expect(codePointLength('\ud83d')).toBe(1);
    expect(codePointLength('a\udc00b')).toBe(3);
  });
});

describe('joinKeyOf: result ids made under either rule meet on one key', () => {
  it('maps a key kept verbatim under the character rule to the id the byte rule derived from it', () => {
    const key = '键'.repeat(100); // 100 characters, 300 bytes: verbatim now, sha256-<hex> before
    expect(customIdFor(1, key)).toBe(key);
    expect(joinKeyOf(key)).toBe(sha(key));
    expect(joinKeyOf(sha(key))).toBe(sha(key));
  });

  it('leaves every other id alone', () => {
    for (const id of ['row-1', 'x'.repeat(256), 'x'.repeat(300), '键'.repeat(85), sha('a')])
      expect(joinKeyOf(id)).toBe(id);
  });
});
