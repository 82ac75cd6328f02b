import type { ByteWriter } from '../../internal/byte-writer.js';
import { KEY_BYTES } from './request-key.js';

/**
 * A keyed request's record in a run's `request-keys.tsv`: `<custom_id as JSON>\t<key, 32 hex
 * digits>\t<kind>\n`, the kind (`s`ent, `d`uplicate, `c`ached) known only where the request is
 * decided. Written here as `*` (UNDECIDED), the byte the run's digest reads in its place.
 */
export const UNDECIDED = 0x2a;
/** Bytes of a record besides its id's: the id's quotes, two tabs, 32 hex digits, the kind, a newline. */
export const RECORD_FIXED_BYTES = 2 + 2 + KEY_BYTES * 2 + 2;

const QUOTE = 0x22;
const TAB = 0x09;
const LF = 0x0a;

/** Each byte's two hex digits (lower case), one table read a byte instead of two shifts and two reads. */
const HEX_PAIRS = new Uint8Array(512);
/** The same pairs as one 16-bit number each, the first digit in its low byte (one store a byte). */
const HEX_WORDS = new Uint16Array(256);
for (let b = 0; b < 256; b++) {
  HEX_PAIRS[b * 2] = '0123456789abcdef'.charCodeAt(b >> 4);
  HEX_PAIRS[b * 2 + 1] = '0123456789abcdef'.charCodeAt(b & 15);
  HEX_WORDS[b] = HEX_PAIRS[b * 2]! | (HEX_PAIRS[b * 2 + 1]! << 8);
}

/** Writes `key[at, at + 16)` as 32 hex digits at `out[n]`; returns where they end. */
export function writeKeyHex(out: Uint8Array, n: number, key: Uint8Array, at: number): number {
  for (let i = at; i < at + KEY_BYTES; i++) {
    const pair = key[i]! * 2;
    out[n++] = HEX_PAIRS[pair]!;
    out[n++] = HEX_PAIRS[pair + 1]!;
  }
  return n;
}

/**
 * Bytes the records of a rendered batch's keyed lines take (see writeKeyRecords): line i (where
 * `starts[i] >= 0`) has its id's JSON text without quotes at `idFroms[i]`..`idTos[i]`. -1 when a
 * line's id was not written by the renderer (no record can be made from the line).
 */
export function keyRecordBytes(starts: Int32Array, idFroms: Int32Array, idTos: Int32Array): number {
  let total = 0;
  for (let i = 0; i < starts.length; i++) {
    if (starts[i]! < 0) continue;
    if (idFroms[i]! < 0) return -1;
    total += idTos[i]! - idFroms[i]! + RECORD_FIXED_BYTES;
  }
  return total;
}

/**
 * Writes the records of a rendered batch's keyed lines, kinds UNDECIDED, back to back at the
 * writer's place, after its lines (in the writer the lines are in: a render thread's shared buffer,
 * so the main thread reads them where they are, nothing copied between threads). Line i (where
 * `starts[i] >= 0`) has its id's JSON text without quotes at `idFroms[i]`..`idTos[i]` (where the
 * renderer wrote it: the same bytes the record quotes) and its key at `keys[i * 16]`; its record is
 * `recordAt[i]`..`recordAt[i + 1]` in the buffer (empty for an entry without a line). Made where the
 * batch was rendered, so the thread that decides each line only sets its kind. `total`: what
 * keyRecordBytes says of these lines. False, nothing written, when a line's id was not written by
 * the renderer.
 */
export function writeKeyRecords(
  writer: ByteWriter,
  starts: Int32Array,
  idFroms: Int32Array,
  idTos: Int32Array,
  keys: Uint8Array,
  recordAt: Int32Array,
  total = keyRecordBytes(starts, idFroms, idTos),
): boolean {
  if (total < 0) return false;
  const n = starts.length;
  // The lines and their records in one buffer (a larger one if they do not fit: the lines move too).
  const out = writer.ensure(total);
  // The hex digits two at a time, little-endian at any address (measured: ~67 -> ~53 ns a record).
  const view = new DataView(out.buffer, out.byteOffset, out.length);
  let p = writer.pos;
  recordAt[0] = p;
  for (let i = 0; i < n; i++) {
    if (starts[i]! >= 0) {
      out[p++] = QUOTE;
      // The id is a few bytes: a loop costs less than a call.
      for (let k = idFroms[i]!, to = idTos[i]!; k < to; k++) out[p++] = out[k]!;
      out[p++] = QUOTE;
      out[p++] = TAB;
      for (let k = i * KEY_BYTES, to = k + KEY_BYTES; k < to; k++, p += 2)
        view.setUint16(p, HEX_WORDS[keys[k]!]!, true);
      out[p++] = TAB;
      out[p++] = UNDECIDED;
      out[p++] = LF;
    }
    recordAt[i + 1] = p;
  }
  writer.pos = p;
  return true;
}
