import {
  LINES_MEMORY_LOW,
  linesMemory,
  type WasmMemory,
  wasm,
  wasmMemory,
} from '../../internal/lines-memory.js';
import { REQUEST_KEYS_WASM } from './request-keys-wasm.js';

/**
 * The request-keys module (native/request-keys.c: xxHash's XXH3-128, compiled to WebAssembly), one
 * instance a thread over the lines memory, where a batch's lines are keyed where they were rendered,
 * and one over a memory of the thread's own, where other bytes are copied to be keyed.
 */

/** The exports of native/request-keys.c's module. */
interface KeysExports {
  keys(
    data: number,
    n: number,
    lines: number,
    out: number,
    recordAt: number,
    records: number,
    saved: number,
  ): void;
  __stack_pointer: { value: number };
  __heap_base: { value: number };
}

/** Bytes of the stack a call runs on (the module's deepest use is well under 1 KiB). */
const STACK_BYTES = 8 * 1024;
const PAGE = 64 * 1024;

let compiled: object | undefined;
/** This thread's instance over the lines memory, and over its own. */
let inLines: KeysExports | undefined;
let own: OwnMemory | undefined;

/** A thread's own memory and instance; `one`: keyLineCopied's line place (4 int32s) and key (16 bytes). */
interface OwnMemory {
  exports: KeysExports;
  memory: WasmMemory;
  bytes: Uint8Array;
  one: Int32Array;
}
/** Where keyLineCopied puts its line's place, its key and its line in a thread's own memory. */
const ONE_PLACE = LINES_MEMORY_LOW;
const ONE_KEY = LINES_MEMORY_LOW + 16;
const ONE_LINE = LINES_MEMORY_LOW + 64;

function instantiate(memory: WasmMemory): KeysExports {
  compiled ??= new wasm.Module(Buffer.from(REQUEST_KEYS_WASM, 'base64'));
  const made = new wasm.Instance(compiled, { env: { memory } }).exports as KeysExports;
  // Its constants must lie below what the callers write.
  if (made.__heap_base.value > LINES_MEMORY_LOW)
    throw new Error(
      `the request-keys module's data ends at ${made.__heap_base.value}, past ${LINES_MEMORY_LOW}`,
    );
  return made;
}

/**
 * Makes this thread's instance over the lines memory: the main thread's own (the default), or the
 * one a render thread is handed. Synchronous: the module is ~14 KB.
 */
export function useLinesMemory(memory?: WasmMemory): void {
  if (inLines) return;
  // Not a default argument: evaluated on every call, it made a lines memory of the thread's own in
  // a render thread (which keys in the one it was handed).
  const lines = memory ?? linesMemory();
  if (lines) inLines = instantiate(lines);
}

/**
 * Bytes keysInPlace needs past a batch's records: the lines' places, the head of the longest line up
 * to its id's end, and a stack.
 */
export function inPlaceScratchBytes(starts: Int32Array, idTos: Int32Array): number {
  let span = 0;
  for (let i = 0; i < starts.length; i++) if (starts[i]! >= 0) span = Math.max(span, idTos[i]! - starts[i]!);
  return 15 + starts.length * 16 + ((span + 15) & -16) + STACK_BYTES;
}

/**
 * The keys of a batch's lines into `keys` (16 bytes a line), each made where its line is in `buffer`
 * (in the lines memory), and their records of request-keys.tsv written from `recordsAt` in the
 * buffer, placed by `recordAt` (see writeKeyRecords). Line i is `buffer[starts[i], ends[i])` (none
 * where starts[i] < 0), its custom_id's value at `[idFroms[i], idTos[i])`. `scratchAt`: `scratch`
 * bytes of the buffer (inPlaceScratchBytes) no one reads meanwhile. `keys` and `recordAt` are views
 * of the same buffer. The lines are moved about while they are hashed and left as they were.
 */
export function keysInPlace(
  buffer: Uint8Array,
  starts: Int32Array,
  ends: Int32Array,
  idFroms: Int32Array,
  idTos: Int32Array,
  keys: Uint8Array,
  recordAt: Int32Array,
  recordsAt: number,
  scratchAt: number,
  scratch: number,
): void {
  useLinesMemory();
  const base = buffer.byteOffset;
  const lines = placeLines(buffer.buffer, base + scratchAt, starts, ends, idFroms, idTos);
  const module = inLines!;
  // A stack of its own: the memory is every thread's (see scripts/build-request-keys-wasm.sh).
  module.__stack_pointer.value = (base + scratchAt + scratch) & -16;
  module.keys(
    base,
    starts.length,
    lines,
    keys.byteOffset,
    recordAt.byteOffset,
    recordsAt,
    lines + 16 * starts.length,
  );
}

/**
 * keysInPlace for bytes anywhere (no records): the span of `data` the lines cover is copied into
 * this thread's own memory and keyed there, the keys copied into `out[i * 16, i * 16 + 16)`.
 */
export function keysCopied(
  data: Uint8Array,
  starts: Int32Array,
  ends: Int32Array,
  idFroms: Int32Array,
  idTos: Int32Array,
  out: Uint8Array,
): void {
  const n = starts.length;
  let from = Number.MAX_SAFE_INTEGER;
  let to = -1;
  let span = 0;
  for (let i = 0; i < n; i++)
    if (starts[i]! >= 0) {
      from = Math.min(from, starts[i]!);
      to = Math.max(to, ends[i]!);
      span = Math.max(span, idTos[i]! - starts[i]!);
    }
  if (to < 0) return;
  // The bytes at the same address mod 8 as in `data`: V8 copies out of shared memory (a render
  // thread's buffer) a word at a time only so, a byte at a time otherwise.
  const at = LINES_MEMORY_LOW + ((data.byteOffset + from) & 7);
  const keysAt = (at + to - from + 15) & -16;
  const linesAt = keysAt + n * 16;
  const stackTop = (linesAt + n * 16 + span + STACK_BYTES + 15) & -16;
  const { exports, bytes } = ownMemory(stackTop);
  bytes.set(new Uint8Array(data.buffer, data.byteOffset + from, to - from), at);
  const lines = placeLines(bytes.buffer, linesAt, starts, ends, idFroms, idTos, from);
  exports.__stack_pointer.value = stackTop;
  exports.keys(at, n, lines, keysAt, 0, -1, lines + 16 * n);
  for (let i = 0; i < n; i++)
    if (starts[i]! >= 0) out.set(bytes.subarray(keysAt + i * 16, keysAt + i * 16 + 16), i * 16);
}

/**
 * The lines' places, as the module reads them (4n int32s from a multiple of 16 at or past `at`),
 * less `from` (where the bytes from `from` were copied to the module's `data`).
 */
function placeLines(
  memory: ArrayBufferLike,
  at: number,
  starts: Int32Array,
  ends: Int32Array,
  idFroms: Int32Array,
  idTos: Int32Array,
  from = 0,
): number {
  const n = starts.length;
  const lines = (at + 15) & -16;
  const places = new Int32Array(memory, lines, 4 * n);
  if (from === 0) {
    places.set(starts);
    places.set(ends, n);
    places.set(idFroms, 2 * n);
    places.set(idTos, 3 * n);
    return lines;
  }
  for (let i = 0; i < n; i++) {
    const line = starts[i]! >= 0;
    places[i] = line ? starts[i]! - from : -1;
    places[n + i] = line ? ends[i]! - from : -1;
    places[2 * n + i] = line ? idFroms[i]! - from : -1;
    places[3 * n + i] = line ? idTos[i]! - from : -1;
  }
  return lines;
}

/**
 * keysCopied for one line `line[start, end)`, its id's value at `[idFrom, idTo)`, its key into
 * `out[at, at + 16)`: a line a call (a mapper's requests, a user's items), so nothing is made a
 * call but the view its bytes are copied through (~400 ns a ~960-byte line, the id's search included).
 */
export function keyLineCopied(
  line: Uint8Array,
  start: number,
  end: number,
  idFrom: number,
  idTo: number,
  out: Uint8Array,
  at: number,
): void {
  // The line at the same address mod 8 as where it is (see keysCopied), the head's room after it.
  const copyAt = ONE_LINE + ((line.byteOffset + start) & 7);
  const savedAt = (copyAt + end - start + 15) & -16;
  const stackTop = (savedAt + idTo - start + STACK_BYTES + 15) & -16;
  const { exports, bytes, one } = ownMemory(stackTop);
  bytes.set(new Uint8Array(line.buffer, line.byteOffset + start, end - start), copyAt);
  one[0] = 0;
  one[1] = end - start;
  one[2] = idFrom - start;
  one[3] = idTo - start;
  exports.__stack_pointer.value = stackTop;
  exports.keys(copyAt, 1, ONE_PLACE, ONE_KEY, 0, -1, savedAt);
  for (let k = 0; k < 16; k++) out[at + k] = bytes[ONE_KEY + k]!;
}

/** This thread's own memory and instance, grown to at least `bytes`. */
function ownMemory(bytes: number): OwnMemory {
  if (!own) {
    const memory = wasmMemory(Math.ceil(Math.max(bytes, 4 * PAGE) / PAGE));
    own = {
      exports: instantiate(memory),
      memory,
      bytes: new Uint8Array(memory.buffer),
      one: new Int32Array(0),
    };
    own.one = new Int32Array(memory.buffer, ONE_PLACE, 4);
  }
  if (own.bytes.length < bytes) {
    own.memory.grow(Math.ceil((bytes - own.bytes.length) / PAGE));
    own.bytes = new Uint8Array(own.memory.buffer);
    own.one = new Int32Array(own.memory.buffer, ONE_PLACE, 4);
  }
  return own;
}
