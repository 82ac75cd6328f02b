/**
 * Page compression for batchpipe's Parquet writer, native and off this thread: snappy by `snappy`
 * (napi-rs; about 3x the speed of a JavaScript snappy, docs/dependencies.md), zstd by
 * `@mongodb-js/zstd` (its default level). Both compress on libuv's thread pool, so pages compress
 * while the next rows are encoded. Where a platform binary is missing, `pageCompressor` says so and
 * the file is written by parquet-wasm.
 */
import { createRequire } from 'node:module';
import type { ParquetCompression } from './parquet-write-settings.js';

/** Compresses one page's bytes. */
export type Compress = (bytes: Buffer) => Promise<Buffer>;

/** Parquet's CompressionCodec numbers. */
export const CODEC: Record<ParquetCompression, number> = { snappy: 1, zstd: 6 };

const loaded = new Map<ParquetCompression, Compress | null>();

/** The native compressor of `compression`, or undefined where its binary is missing. */
export function pageCompressor(compression: ParquetCompression): Compress | undefined {
  if (!loaded.has(compression)) {
    const require = createRequire(import.meta.url);
    try {
      if (compression === 'snappy') {
        const { compress } = require('snappy') as {
          compress: (bytes: Buffer, options: { copyOutputData: boolean }) => Promise<Buffer>;
        };
        // Its output copied into a Buffer of Node's: the native one is sized for the worst case
        // and held until a garbage collection finds it (measured: +300 MB of RSS over 1M rows).
        loaded.set(compression, (bytes) => compress(bytes, { copyOutputData: true }));
      } else loaded.set(compression, (require('@mongodb-js/zstd') as { compress: Compress }).compress);
    } catch {
      loaded.set(compression, null);
    }
  }
  return loaded.get(compression) ?? undefined;
}
