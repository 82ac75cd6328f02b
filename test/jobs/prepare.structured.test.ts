import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RequestBuilder } from '../../src/core/requests/request-builder.js';
import { type PrepareOptions, prepare } from '../../src/jobs/prepare.js';
import { resolveProfile } from '../../src/providers/resolve-profile.js';
import type { RequestItem } from '../../src/types.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-prepare-structured-');
let runs = 0;

const Schema = z.object({
  label: z.enum(['a', 'b']),
  why: z.string().nullable(),
  at: z.object({ page: z.number() }),
});

describe('prepare with labels or a schema', () => {
  it("writes the lines each row's request makes when built as an object and serialized, for every profile and form (property)", async () => {
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
          // The reference: each row's request built as an object, serialized with JSON.stringify.
          const builder = RequestBuilder.create({
            ...options,
            provider: resolveProfile(provider ?? 'local'),
          });
          const expected = rows.map((cells, i) => {
            const built = builder.build({
              kind: 'row',
              index: i + 1,
              file: input,
              line: 0,
              values: { a: cells[0]!, b: cells[1]! },
            });
            return `${JSON.stringify((built as RequestItem).request)}\n`;
          });
          expect(fast.shards.map((s) => readFileSync(join(fast.outDir, s.file), 'utf8')).join('')).toBe(
            expected.join(''),
          );
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
