import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type PrepareOptions, prepare } from '../../src/jobs/prepare.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-prepare-structured-');
let runs = 0;

function filesIn(outDir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(outDir).sort()) files[name] = readFileSync(join(outDir, name), 'utf8');
  return files;
}

const Schema = z.object({
  label: z.enum(['a', 'b']),
  why: z.string().nullable(),
  at: z.object({ page: z.number() }),
});

describe('prepare with labels or a schema', () => {
  it('writes the same bytes from the CSV fast path as from the Row path, for every profile and form (property)', async () => {
    const cell = fc.string({
      unit: fc.constantFrom('"', ',', '\n', 'é', '😀', '{', '}', 'x', ' '),
      maxLength: 10,
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(cell, cell), { minLength: 1, maxLength: 12 }),
        fc.constantFrom('dashscope', 'openai', 'local') as fc.Arbitrary<PrepareOptions['provider']>,
        fc.constantFrom<Pick<PrepareOptions, 'labels' | 'schema' | 'system'>>(
          { labels: ['positive', 'negative', 'neutral'] },
          { labels: ['ja', 'nein'], system: 'Label {{b}} "exactly".' },
          { schema: Schema },
          { schema: z.toJSONSchema(Schema) as Record<string, unknown>, system: 'Extract.' },
        ),
        async (rows, provider, structured) => {
          const input = fileWith(dir, 'in.csv', csvText(['a', 'b'], rows));
          const options = {
            template: 'Text: {{a}}',
            model: provider === 'openai' ? 'gpt-4o-mini' : 'qwen-plus',
            provider,
            ...structured,
          };
          const fast = await prepare(input, { ...options, outDir: join(dir, `fast-${++runs}`) });
          const slow = await prepare(input, {
            ...options,
            outDir: join(dir, `rows-${runs}`),
            engine: 'rows',
          });
          expect(fast.engine).toBe('bytes');
          expect(slow.engine).toBe('rows');
          expect(filesIn(fast.outDir)).toEqual(filesIn(slow.outDir));
          const first = JSON.parse(
            readFileSync(join(fast.outDir, fast.shards[0]!.file), 'utf8').split('\n')[0]!,
          );
          expect(first.body.response_format.type).toBe(
            provider === 'dashscope' ? 'json_object' : 'json_schema',
          );
        },
      ),
      { numRuns: 25 },
    );
  });
});
