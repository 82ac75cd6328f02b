import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { customIdFor, MAX_CUSTOM_ID_BYTES } from '../../../src/core/requests/custom-id.js';

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

  it('derives sha256-<hex> for a key over 256 UTF-8 bytes, so a join can recompute it', () => {
    const exact = 'x'.repeat(MAX_CUSTOM_ID_BYTES);
    expect(customIdFor(1, exact)).toBe(exact);
    const long = '😀'.repeat(65); // 260 bytes, 130 UTF-16 units
    const derived = customIdFor(1, long);
    expect(derived).toBe(`sha256-${createHash('sha256').update(long).digest('hex')}`);
    expect(derived.length).toBeLessThanOrEqual(MAX_CUSTOM_ID_BYTES);
    expect(customIdFor(99, long)).toBe(derived);
  });
});
