import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll } from 'vitest';

/** A temp directory removed after the file's tests. */
export function tempDir(prefix = 'bp-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let counter = 0;

/** Writes `content` to a fresh file in `dir`; returns its path. */
export function fileWith(dir: string, name: string, content: string | Buffer): string {
  const path = join(dir, `${++counter}-${name}`);
  writeFileSync(path, content);
  return path;
}

/** Everything a stream emits. Only for small test inputs. */
export async function collect<T>(stream: AsyncIterable<unknown>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item as T);
  return items;
}

/** A byte stream that hands out `content` in chunks of `size` bytes (to test chunk boundaries). */
export function chunked(content: string | Buffer, size: number): Readable {
  const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return Readable.from(chunks);
}

/** Runs `items` through a stream stage and collects what comes out. */
export async function through<T>(stage: NodeJS.ReadWriteStream, items: unknown[]): Promise<T[]> {
  const { pipeline } = await import('node:stream/promises');
  const out: T[] = [];
  await pipeline(Readable.from(items), stage, async (source: AsyncIterable<unknown>) => {
    for await (const item of source) out.push(item as T);
  });
  return out;
}

/** A Row as a source would emit it. */
export function row(
  index: number,
  values: Record<string, unknown>,
  file = 'table.csv',
): {
  kind: 'row';
  index: number;
  file: string;
  line: number;
  values: Record<string, unknown>;
} {
  return { kind: 'row', index, file, line: index + 1, values };
}

/** Rows `{id: <prefix><n>, text: "text <n>"}` as a CSV source would make them (row n on line n + 1). */
export function textRows(count: number, prefix = 'r', file = 't.csv') {
  return Array.from({ length: count }, (_, i) => ({
    kind: 'row' as const,
    index: i + 1,
    file,
    line: i + 2,
    values: { id: `${prefix}${i + 1}`, text: `text ${i + 1}` },
  }));
}

/**
 * Waits until `done()` holds, checking every 20 ms, for at most `limitMs`: for clean-up that runs
 * after a stream is destroyed, which a busy machine may take its time over. Not a timed assertion:
 * the caller asserts the state after.
 */
export async function settled(done: () => boolean, limitMs = 10_000): Promise<void> {
  for (let waited = 0; !done() && waited < limitMs; waited += 20)
    await new Promise((resolve) => setTimeout(resolve, 20));
}
