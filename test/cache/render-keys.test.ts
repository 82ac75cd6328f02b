/**
 * Request keys as `prepare` makes them where lines are rendered (here and on a render thread, past
 * the first rows): each key in request-keys.tsv is the defined one (XXH3-128 of the written line
 * without its custom_id's value), whatever the ids hold, and rows asking the same thing are found alike.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REQUEST_KEYS_FILE } from '../../src/cache/request-reuse.js';
import { RENDER_THREAD_AFTER_ROWS } from '../../src/core/requests/request-maker.js';
import { prepare } from '../../src/jobs/prepare.js';
import { tempDir } from '../helpers.js';
import { definedKey } from '../support/request-keys.js';

const dir = tempDir('bp-render-keys-');
const ROWS = RENDER_THREAD_AFTER_ROWS + 3000;

const csvCell = (s: string) => `"${s.replace(/"/g, '""')}"`;

/**
 * Prepares `lines` (a CSV with a `text` column whose values repeat every `distinct` rows) with keys
 * on, and checks every key record: row i's id is `idOf(i)` and its key the defined key of the line
 * written for it (sent, or set aside as a duplicate).
 */
async function expectDefinedKeys(
  name: string,
  lines: string[],
  distinct: number,
  idOf: (i: number) => string,
  idColumn?: string,
  extension = 'csv',
  rows = ROWS,
): Promise<void> {
  const input = join(dir, `${name}.${extension}`);
  writeFileSync(input, `${lines.join('\n')}\n`);
  const outDir = join(dir, name);
  const result = await prepare(input, {
    outDir,
    model: 'qwen-plus',
    template: 'Say {{text}}',
    idColumn,
    temperature: 0,
    provider: 'local',
    dedup: 'auto',
  });
  expect(result.reuse).toMatchObject({ keyed: rows, sent: distinct, duplicates: rows - distinct });
  const written = new Map<string, string>();
  for (const file of readdirSync(outDir).filter((f) => /^(requests-.*|reused\.requests)\.jsonl$/.test(f)))
    for (const line of readFileSync(join(outDir, file), 'utf8').split('\n').slice(0, -1))
      written.set((JSON.parse(line) as { custom_id: string }).custom_id, line);
  const records = readFileSync(join(outDir, REQUEST_KEYS_FILE), 'utf8').split('\n').slice(0, -1);
  expect(records).toHaveLength(rows);
  // The run's digest: SHA-256 of the records with each kind read as `*` (made on the hashing thread
  // for a table this large, from the records where the renderer wrote them).
  const undecided = records.map((r) => `${r.slice(0, -1)}*\n`).join('');
  expect(result.reuse!.digest).toBe(createHash('sha256').update(undecided).digest('hex'));
  for (const [i, record] of records.entries()) {
    const [idJson, key] = record.split('\t');
    const id = JSON.parse(idJson!) as string;
    expect(id).toBe(idOf(i));
    expect(key, id).toBe(definedKey(written.get(id)!));
  }
}

describe('keys made as lines are rendered', () => {
  it('are the defined keys of the lines written, past the rows rendered before a thread starts', async () => {
    // Ids with quotes, backslashes and non-ASCII (written escaped), texts repeating every 997 rows.
    const ids = (i: number) => (i % 5 === 0 ? `id "${i}" \\ é` : i % 7 === 0 ? `ряд-${i}` : `k${i}`);
    const lines = ['id,text'];
    for (let i = 0; i < ROWS; i++) lines.push(`${csvCell(ids(i))},${csvCell(`text ${i % 997} "q" ✓`)}`);
    await expectDefinedKeys('keyed', lines, 997, ids, 'id');
  });

  it('are the defined keys when ids are row numbers written as digits (no id column)', async () => {
    const lines = ['text'];
    for (let i = 0; i < ROWS; i++) lines.push(csvCell(`text ${i % 991} "q" ✓`));
    await expectDefinedKeys('numbered', lines, 991, (i) => `row-${i + 1}`);
  });

  it('are the defined keys from JSON Lines, rendered on two threads at once', async () => {
    const ids = (i: number) => (i % 5 === 0 ? `j "${i}" \\ é` : `j${i}`);
    const lines = Array.from({ length: ROWS }, (_, i) =>
      JSON.stringify({ id: ids(i), text: `text ${i % 983} "q" ✓` }),
    );
    await expectDefinedKeys('jsonl', lines, 983, ids, 'id', 'jsonl');
  });

  it('are the defined keys when a batch outgrows the lines buffers (keyed from a copy)', async () => {
    // Each control character is written as six (\u0001): the first batch outgrows the pooled buffer
    // it was given, the next are given larger ones, outside the lines memory.
    const lines = ['text'];
    for (let i = 0; i < 3000; i++) lines.push(csvCell(`${'\x01'.repeat(800)} ${i % 89}`));
    await expectDefinedKeys('outgrown', lines, 89, (i) => `row-${i + 1}`, undefined, 'csv', 3000);
  });
});
