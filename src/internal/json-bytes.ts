import type { ByteWriter } from './byte-writer.js';

/**
 * JSON string escaping on UTF-8 bytes, byte-identical to JSON.stringify for valid UTF-8: `"` and `\`
 * get a backslash, control characters below 0x20 their short form (\b \t \n \f \r) or \u00xx with
 * lowercase hex, everything else (multi-byte characters included) is copied as is.
 */

/** 0: copy; a letter: backslash + that letter; 1: \u00xx. */
const ESCAPE = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) ESCAPE[c] = 1;
ESCAPE[0x08] = 0x62; // b
ESCAPE[0x09] = 0x74; // t
ESCAPE[0x0a] = 0x6e; // n
ESCAPE[0x0c] = 0x66; // f
ESCAPE[0x0d] = 0x72; // r
ESCAPE[0x22] = 0x22; // "
ESCAPE[0x5c] = 0x5c; // \
const HEX = Buffer.from('0123456789abcdef');

/** The most bytes one input byte can become (`\u00xx`). */
export const MAX_ESCAPE_GROWTH = 6;

/**
 * Writes `src[start, end)` JSON-escaped into `out` at `pos`; returns the new position. With
 * `doubledQuote` >= 0, each doubled quote (a CSV-escaped quote) is read as one. `out` must have room
 * for (end - start) * MAX_ESCAPE_GROWTH bytes. One pass, byte by byte: copying runs between escapes
 * with Buffer#copy measured slower on review text (a view object per run, and runs are short).
 */
export function writeJsonEscaped(
  out: Uint8Array,
  pos: number,
  src: Uint8Array,
  start: number,
  end: number,
  doubledQuote: number,
): number {
  for (let i = start; i < end; i++) {
    const c = src[i]!;
    if (c === doubledQuote) i++;
    const e = ESCAPE[c]!;
    if (e === 0) {
      out[pos++] = c;
      continue;
    }
    out[pos++] = 0x5c;
    if (e === 1) {
      out[pos++] = 0x75; // u
      out[pos++] = 0x30;
      out[pos++] = 0x30;
      out[pos++] = HEX[c >> 4]!;
      out[pos++] = HEX[c & 15]!;
    } else {
      out[pos++] = e;
    }
  }
  return pos;
}

/**
 * Writes a string's JSON-escaped UTF-8 bytes (what JSON.stringify puts between the quotes). Plain
 * text, the common case, is written as is.
 */
export function writeJsonText(out: ByteWriter, text: string): void {
  const json = needsEscape(text) ? JSON.stringify(text).slice(1, -1) : text;
  out.writeText(json);
}

/** True when JSON.stringify would escape something in `text` (a control character, `"`, `\` or a lone surrogate). */
function needsEscape(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return true;
  }
  return false;
}
