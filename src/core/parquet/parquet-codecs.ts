/**
 * Page decompression for the page decoder: zstd natively (`@mongodb-js/zstd`, when its binary for
 * this platform is installed), gzip and brotli by node:zlib, snappy and LZ4_RAW here (both short
 * block formats). A codec not listed is left to parquet-wasm (see `pageCodecs`).
 */
import { createRequire } from 'node:module';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { copyBytes } from '../../internal/copy-bytes.js';

const NONE = 0;
const SNAPPY = 1;
const GZIP = 2;
const BROTLI = 4;
const ZSTD = 6;
const LZ4_RAW = 7;

type ZstdDecompress = (data: Buffer) => Promise<Buffer>;
let zstd: ZstdDecompress | null | undefined;

/** The native zstd decompressor, or null where its platform binary is missing. */
function nativeZstd(): ZstdDecompress | null {
  if (zstd === undefined) {
    try {
      zstd = (createRequire(import.meta.url)('@mongodb-js/zstd') as { decompress: ZstdDecompress })
        .decompress;
    } catch {
      zstd = null;
    }
  }
  return zstd;
}

/** The codecs (Parquet's CompressionCodec numbers) this process decompresses itself. */
export function pageCodecs(): ReadonlySet<number> {
  const codecs = new Set([NONE, SNAPPY, GZIP, BROTLI, LZ4_RAW]);
  if (nativeZstd()) codecs.add(ZSTD);
  return codecs;
}

/** Decompresses one page's bytes to its `size` uncompressed bytes. */
export async function decompress(codec: number, bytes: Uint8Array, size: number): Promise<Uint8Array> {
  let out: Uint8Array;
  switch (codec) {
    case NONE:
      return bytes;
    case SNAPPY:
      out = snappy(bytes, size);
      break;
    case GZIP:
      out = gunzipSync(bytes);
      break;
    case BROTLI:
      out = brotliDecompressSync(bytes);
      break;
    case ZSTD:
      out = await nativeZstd()!(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      break;
    case LZ4_RAW:
      out = lz4Block(bytes, size);
      break;
    default:
      throw new Error(`compression codec ${codec} is not decoded here`);
  }
  if (out.length !== size) throw new Error(`a page decompressed to ${out.length} bytes, not ${size}`);
  return out;
}

/** Snappy's raw block format: a varint length, then literals and back-references. */
export function snappy(input: Uint8Array, size: number): Uint8Array {
  let pos = 0;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    const b = input[pos++]!;
    length |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
  }
  if (length !== size) throw new Error(`snappy block holds ${length} bytes, not ${size}`);
  const out = new Uint8Array(length);
  let o = 0;
  while (pos < input.length) {
    const tag = input[pos++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let len = tag >> 2;
      if (len >= 60) {
        const extra = len - 59;
        len = 0;
        for (let i = 0; i < extra; i++) len |= input[pos++]! << (8 * i);
      }
      len += 1;
      if (pos + len > input.length || o + len > length) throw new Error('snappy literal out of bounds');
      copyBytes(input, pos, pos + len, out, o);
      pos += len;
      o += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      len = ((tag >> 2) & 7) + 4;
      offset = ((tag >> 5) << 8) | input[pos++]!;
    } else if (kind === 2) {
      len = (tag >> 2) + 1;
      offset = input[pos]! | (input[pos + 1]! << 8);
      pos += 2;
    } else {
      len = (tag >> 2) + 1;
      offset =
        (input[pos]! | (input[pos + 1]! << 8) | (input[pos + 2]! << 16) | (input[pos + 3]! << 24)) >>> 0;
      pos += 4;
    }
    if (offset === 0 || offset > o || o + len > length) throw new Error('snappy copy out of bounds');
    copyBack(out, o, offset, len);
    o += len;
  }
  if (o !== length) throw new Error('snappy block ends early');
  return out;
}

/** LZ4's block format (Parquet's LZ4_RAW): sequences of literals and a match. */
export function lz4Block(input: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let pos = 0;
  let o = 0;
  while (pos < input.length) {
    const token = input[pos++]!;
    let literals = token >> 4;
    if (literals === 15) {
      for (let b = 255; b === 255; ) {
        b = input[pos++]!;
        literals += b;
      }
    }
    if (pos + literals > input.length || o + literals > size) throw new Error('lz4 literal out of bounds');
    copyBytes(input, pos, pos + literals, out, o);
    pos += literals;
    o += literals;
    if (pos >= input.length) break;
    const offset = input[pos]! | (input[pos + 1]! << 8);
    pos += 2;
    let len = (token & 15) + 4;
    if ((token & 15) === 15) {
      for (let b = 255; b === 255; ) {
        b = input[pos++]!;
        len += b;
      }
    }
    if (offset === 0 || offset > o || o + len > size) throw new Error('lz4 match out of bounds');
    copyBack(out, o, offset, len);
    o += len;
  }
  if (o !== size) throw new Error('lz4 block ends early');
  return out;
}

/**
 * Below this many bytes a match is copied by a loop here (a literal by copyBytes, whose bound is
 * alike): most literals and matches in text are a few bytes, and a native call cost more than them. Measured on 1 MiB pages of review
 * text: snappy 222 -> 420 MB/s, LZ4 88 -> 380 MB/s of CPU (docs/dependencies.md).
 */
const SHORT_COPY = 32;

/** Copies `len` bytes from `offset` back (the ranges may overlap: a run repeats). */
function copyBack(out: Uint8Array, o: number, offset: number, len: number): void {
  if (offset >= len && len >= SHORT_COPY) out.copyWithin(o, o - offset, o - offset + len);
  else for (let i = 0; i < len; i++) out[o + i] = out[o - offset + i]!;
}
