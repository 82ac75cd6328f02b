import { isAscii } from 'node:buffer';

/**
 * Above this many bytes Node makes an `ascii` (or `latin1`) string an external one: its characters
 * in memory malloc'd outside the JS heap, freed only when the string is collected. A join decoding
 * 1 MiB chunks that way on its result threads left the allocator's freed chunks behind, and peak RSS
 * grew with the size of the result files (+40 MB from 100k to 1M rows).
 */
const EXTERNAL_STRING_BYTES = 0xfbee9;

/**
 * UTF-8 bytes as text. ASCII (most result files: JSON with ASCII keys and, often, escaped or ASCII
 * answers) decodes with the `ascii` decoder, a plain copy, and gives the same string; anything else,
 * and long ASCII text (see EXTERNAL_STRING_BYTES), takes the UTF-8 decoder, whose ASCII path is as
 * fast at that length.
 */
export function decodeText(bytes: Buffer, start = 0, end = bytes.length): string {
  const view = start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
  return view.toString(view.length < EXTERNAL_STRING_BYTES && isAscii(view) ? 'ascii' : 'utf8');
}
