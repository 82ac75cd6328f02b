/**
 * Request keys as `prepare` makes them where lines are rendered (here and on a render thread, past
 * the first rows): each key in request-keys.tsv is the defined one (SHA-256 of the written line
 * without its custom_id's value), whatever the ids hold, and rows asking the same thing are found alike.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REQUEST_KEYS_FILE } from '../../src/cache/request-reuse.js';
import { customIdValueRange, KEY_BYTES } from '../../src/core/requests/request-key.js';
import { RENDER_THREAD_AFTER_ROWS } from '../../src/core/requests/request-maker.js';
import { prepare } from '../../src/jobs/prepare.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('bp-render-keys-');

function definedKey(line: string): string {
  const bytes = Buffer.from(line);
  const value = customIdValueRange(bytes);
  const hash = createHash('sha256');
  if (value) {
    hash.update(bytes.subarray(0, value[0]));
    hash.update(bytes.subarray(value[1]));
  } else hash.update(bytes);
  return hash.digest().subarray(0, KEY_BYTES).toString('hex');
}

const csvCell = (s: string) => `"${s.replace(/"/g, '""')}"`;

describe('keys made as lines are rendered', () => {
  it('are the defined keys of the lines written, past the rows rendered before a thread starts', async () => {
    const rows = RENDER_THREAD_AFTER_ROWS + 3000;
    // Ids with quotes, backslashes and non-ASCII (written escaped), texts repeating every 997 rows.
    const ids = (i: number) => (i % 5 === 0 ? `id "${i}" \\ é` : i % 7 === 0 ? `ряд-${i}` : `k${i}`);
    const lines = ['id,text'];
    for (let i = 0; i < rows; i++) lines.push(`${csvCell(ids(i))},${csvCell(`text ${i % 997} "q" ✓`)}`);
    const input = join(dir, 'table.csv');
    writeFileSync(input, `${lines.join('\n')}\n`);
    const outDir = join(dir, 'out');
    const result = await prepare(input, {
      outDir,
      model: 'qwen-plus',
      template: 'Say {{text}}',
      idColumn: 'id',
      temperature: 0,
      provider: 'local',
      dedup: 'auto',
    });
    expect(result.reuse).toMatchObject({ keyed: rows, sent: 997, duplicates: rows - 997 });
    const written = new Map<string, string>();
    for (const file of readdirSync(outDir).filter((f) => /^requests-.*\.jsonl$/.test(f)))
      for (const line of readFileSync(join(outDir, file), 'utf8').split('\n').slice(0, -1))
        written.set((JSON.parse(line) as { custom_id: string }).custom_id, line);
    for (const line of readFileSync(join(outDir, 'reused.requests.jsonl'), 'utf8').split('\n').slice(0, -1))
      written.set((JSON.parse(line) as { custom_id: string }).custom_id, line);
    const records = readFileSync(join(outDir, REQUEST_KEYS_FILE), 'utf8').split('\n').slice(0, -1);
    expect(records).toHaveLength(rows);
    for (const [i, record] of records.entries()) {
      const [idJson, key] = record.split('\t');
      const id = JSON.parse(idJson!) as string;
      expect(id).toBe(ids(i));
      expect(key, id).toBe(definedKey(written.get(id)!));
    }
  });

  it('are the defined keys when ids are row numbers written as digits (no id column)', async () => {
    const rows = RENDER_THREAD_AFTER_ROWS + 3000;
    const lines = ['text'];
    for (let i = 0; i < rows; i++) lines.push(csvCell(`text ${i % 991} "q" ✓`));
    const input = join(dir, 'plain.csv');
    writeFileSync(input, `${lines.join('\n')}\n`);
    const outDir = join(dir, 'plain-out');
    const result = await prepare(input, {
      outDir,
      model: 'qwen-plus',
      template: 'Say {{text}}',
      temperature: 0,
      provider: 'local',
      dedup: 'auto',
    });
    expect(result.reuse).toMatchObject({ keyed: rows, sent: 991, duplicates: rows - 991 });
    const written = new Map<string, string>();
    for (const file of readdirSync(outDir).filter((f) => /^(requests-.*|reused\.requests)\.jsonl$/.test(f)))
      for (const line of readFileSync(join(outDir, file), 'utf8').split('\n').slice(0, -1))
        written.set((JSON.parse(line) as { custom_id: string }).custom_id, line);
    const records = readFileSync(join(outDir, REQUEST_KEYS_FILE), 'utf8').split('\n').slice(0, -1);
    expect(records).toHaveLength(rows);
    for (const [i, record] of records.entries()) {
      const [idJson, key] = record.split('\t');
      const id = JSON.parse(idJson!) as string;
      expect(id).toBe(`row-${i + 1}`);
      expect(key, id).toBe(definedKey(written.get(id)!));
    }
  });
});
