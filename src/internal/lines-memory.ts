/**
 * The shared WebAssembly memory the lines pool's buffers are carved from (LINES_POOL), so request
 * keys are made where a batch's lines were rendered, without copying them into a module's own
 * memory (src/core/requests/key-module.ts). Its first LINES_MEMORY_LOW bytes are the key
 * module's (its constants); the buffers follow. Fixed in size: a shared memory must state its
 * maximum, and buffers past these are plain shared memory, keyed by copying.
 */

/** The WebAssembly API as used here (the project's TypeScript libraries do not declare it). */
export interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
  /** Adds `pages` pages (64 KiB each); `buffer` is then a new, larger object. */
  grow(pages: number): number;
}
export interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
}
export const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** WebAssembly's page. */
const PAGE = 64 * 1024;
/** Bytes below the buffers, kept for the key module's data (its linker puts them under 64 KiB). */
export const LINES_MEMORY_LOW = PAGE;
/** Bytes of a lines buffer (LINES_POOL's size). */
export const LINES_BUFFER_BYTES = 2 * 1024 * 1024;
/** Lines buffers in the memory: as many as LINES_POOL keeps. */
export const LINES_MEMORY_BUFFERS = 16;

let memory: WasmMemory | undefined;
let unavailable = false;

/**
 * The memory, made on first use (on the main thread; a render thread is handed it). Undefined where
 * it cannot be made (a WebAssembly memory reserves address space beyond its size, which a tight
 * `ulimit -v` refuses): the pool's buffers are then plain shared memory, keyed by copying.
 */
export function linesMemory(): WasmMemory | undefined {
  if (memory || unavailable) return memory;
  try {
    memory = new wasm.Memory({
      initial: (LINES_MEMORY_LOW + LINES_MEMORY_BUFFERS * LINES_BUFFER_BYTES) / PAGE,
      maximum: (LINES_MEMORY_LOW + LINES_MEMORY_BUFFERS * LINES_BUFFER_BYTES) / PAGE,
      shared: true,
    });
  } catch {
    unavailable = true;
  }
  return memory;
}

/**
 * A shared memory of `pages` pages that can grow to 1 GiB (a shared memory is reserved at its
 * maximum; the pages are taken as they are touched).
 */
export function wasmMemory(pages: number): WasmMemory {
  return new wasm.Memory({ initial: pages, maximum: (1024 * 1024 * 1024) / PAGE, shared: true });
}

/** Whether `buffer` is in the lines memory of this thread (as the main thread made it). */
export function inLinesMemory(buffer: Uint8Array): boolean {
  return memory !== undefined && buffer.buffer === memory.buffer;
}
