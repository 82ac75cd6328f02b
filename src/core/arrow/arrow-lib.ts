/**
 * The one place the columnar libraries are loaded: `apache-arrow` (Arrow memory, IPC files and
 * streams) and `parquet-wasm` (arrow-rs compiled to WebAssembly: Parquet read and write), chosen by
 * measurement (docs/dependencies.md). Both load on first use, inside the async code of a source or
 * sink, never at import: parquet-wasm compiles its WebAssembly when loaded, and a CSV job should not
 * pay for it (nor should importing batchpipe from CommonJS meet an await).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

export type ArrowModule = typeof import('apache-arrow');
export type ParquetModule = typeof import('parquet-wasm/esm/parquet_wasm.js');

let arrow: Promise<ArrowModule> | undefined;
let arrowLoaded: ArrowModule | undefined;
let parquet: Promise<ParquetModule> | undefined;
let parquetCode: Promise<WasmCode> | undefined;

/** A compiled WebAssembly.Module (the TypeScript lib this project builds with does not declare it). */
export type WasmCode = { readonly [wasmCode]: true };
declare const wasmCode: unique symbol;
const wasmApi = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<WasmCode> } })
  .WebAssembly;

/** apache-arrow, loaded once. */
export function loadArrow(): Promise<ArrowModule> {
  arrow ??= import('apache-arrow').then((module) => {
    arrowLoaded = module;
    return module;
  });
  return arrow;
}

/** apache-arrow once `loadArrow` has loaded it (every Arrow batch comes from code that did). */
export function loadedArrow(): ArrowModule {
  if (!arrowLoaded) throw new Error('apache-arrow used before loadArrow() (a batchpipe bug)');
  return arrowLoaded;
}

/**
 * parquet-wasm's WebAssembly, compiled once per process. Its web build is instantiated from it (not
 * its Node build, which compiles its own copy): a compiled module can be sent to a worker thread, so
 * every decode thread instantiates it in a few milliseconds and shares its optimized code.
 */
export function parquetWasmCode(): Promise<WasmCode> {
  parquetCode ??= readFile(
    createRequire(import.meta.url).resolve('parquet-wasm/esm/parquet_wasm_bg.wasm'),
  ).then((bytes) => wasmApi.compile(bytes));
  return parquetCode;
}

/** parquet-wasm, instantiated once on this thread from `parquetWasmCode`. */
export function loadParquet(): Promise<ParquetModule> {
  parquet ??= Promise.all([import('parquet-wasm/esm/parquet_wasm.js'), parquetWasmCode()]).then(
    ([module, code]) => {
      module.initSync({ module: code as never });
      return module;
    },
  );
  return parquet;
}
