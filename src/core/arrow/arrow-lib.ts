/**
 * The one place the columnar libraries are loaded: `apache-arrow` (Arrow memory, IPC files and
 * streams) and `parquet-wasm` (arrow-rs compiled to WebAssembly: Parquet read and write), chosen by
 * measurement (docs/dependencies.md). Both load on first use, inside the async code of a source or
 * sink, never at import: parquet-wasm compiles its WebAssembly when loaded, and a CSV job should not
 * pay for it (nor should importing batchpipe from CommonJS meet an await).
 */
export type ArrowModule = typeof import('apache-arrow');
export type ParquetModule = typeof import('parquet-wasm');

let arrow: Promise<ArrowModule> | undefined;
let arrowLoaded: ArrowModule | undefined;
let parquet: Promise<ParquetModule> | undefined;

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

/** parquet-wasm (its Node build: the WebAssembly is read from the package, not fetched), loaded once. */
export function loadParquet(): Promise<ParquetModule> {
  parquet ??= import('parquet-wasm');
  return parquet;
}
