import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PrepareOptions, prepare } from '../../src/run/prepare.js';
import { csvText, reviewRows } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir();
let runs = 0;

/** Every file prepare wrote, by name. */
function filesIn(outDir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(outDir).sort()) files[name] = readFileSync(join(outDir, name), 'utf8');
  return files;
}

async function bothEngines(input: string, options: Omit<PrepareOptions, 'outDir' | 'engine'>) {
  const fast = await prepare(input, { ...options, outDir: join(dir, `fast-${++runs}`) });
  const rows = await prepare(input, { ...options, outDir: join(dir, `rows-${runs}`), engine: 'rows' });
  return { fast, rows };
}

const cell = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  {
    weight: 1,
    arbitrary: fc.string({
      unit: fc.constantFrom(
        '"',
        ',',
        '\n',
        '\r',
        '\t',
        '\\',
        '\u0001',
        '\u001f',
        '\u2028',
        'é',
        '😀',
        ' ',
        'a',
      ),
      maxLength: 12,
    }),
  },
);

describe('prepare', () => {
  it('writes the same bytes from the CSV fast path as from the Row path (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(cell, cell, cell), { maxLength: 25 }),
        fc.record({
          eol: fc.constantFrom('\n', '\r\n'),
          bom: fc.boolean(),
          system: fc.option(fc.constantFrom('Answer with one word.', 'About {{b}}: be "brief"\n')),
          template: fc.constantFrom('Classify: {{a}}', '{{a}}{{b}}', '{{ c }} \\ {{a}} "{{b}}"', '{{a}}'),
          idColumn: fc.option(fc.constantFrom('a', 'c')),
          endpoint: fc.constantFrom('/v1/chat/completions' as const, '/v1/embeddings' as const),
          maxLinesPerFile: fc.integer({ min: 1, max: 8 }),
          ragged: fc.boolean(),
          relaxColumnCount: fc.boolean(),
          enableThinking: fc.option(fc.boolean()),
          temperature: fc.option(fc.constantFrom(0, 0.7)),
        }),
        async (table, o) => {
          const rows = table.map(([a, b, c], i) => (o.ragged && i % 5 === 4 ? [a, b] : [a, b, c]));
          const input = fileWith(
            dir,
            'table.csv',
            csvText(['a', 'b', 'c'], rows, { eol: o.eol, bom: o.bom }),
          );
          const options: Omit<PrepareOptions, 'outDir' | 'engine'> = {
            model: o.endpoint === '/v1/embeddings' ? 'text-embedding-v4' : 'qwen3.5-plus',
            template: o.template,
            endpoint: o.endpoint,
            maxLinesPerFile: o.maxLinesPerFile,
            relaxColumnCount: o.relaxColumnCount,
            ...(o.endpoint === '/v1/chat/completions' && o.system !== null && { system: o.system }),
            ...(o.idColumn !== null && { idColumn: o.idColumn }),
            ...(o.enableThinking !== null &&
              o.endpoint === '/v1/chat/completions' && { enableThinking: o.enableThinking }),
            ...(o.temperature !== null && { temperature: o.temperature }),
          };
          const { fast, rows: slow } = await bothEngines(input, options);
          expect(fast.engine).toBe('bytes');
          expect(slow.engine).toBe('rows');
          expect(filesIn(fast.outDir)).toEqual(filesIn(slow.outDir));
          expect(fast.warnings).toEqual(slow.warnings);
          // Every row comes out once: as a request line or a rejection.
          expect(fast.requests + fast.rejected).toBe(fast.rows);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('writes the same bytes on both engines for a table that fills many write buffers', async () => {
    const reviews = reviewRows(8000, 5);
    const input = fileWith(
      dir,
      'many.csv',
      csvText(
        ['id', 'review', 'rating', 'product'],
        reviews.map((r) => [r.id, r.review, r.rating, r.product]),
        { eol: '\r\n' },
      ),
    );
    const { fast, rows } = await bothEngines(input, {
      model: 'qwen-plus',
      template: 'Rate: {{review}}',
      idColumn: 'id',
      maxLinesPerFile: 3000,
    });
    expect(fast.requests).toBe(8000);
    expect(fast.shards.map((s) => s.lines)).toEqual([3000, 3000, 2000]);
    expect(filesIn(fast.outDir)).toEqual(filesIn(rows.outDir));
  });

  it('writes keys that need deriving or unescaping the same on both engines', async () => {
    const keys = [
      'x'.repeat(300),
      '"'.repeat(200),
      'é'.repeat(129),
      'é'.repeat(128),
      '',
      'a"b\\c',
      'tab\there',
    ];
    const input = fileWith(
      dir,
      'keys.csv',
      csvText(
        ['id', 'text'],
        keys.map((k, i) => [k, `t${i}`]),
      ),
    );
    const { fast, rows } = await bothEngines(input, {
      model: 'qwen-plus',
      template: '{{text}}',
      idColumn: 'id',
    });
    expect(filesIn(fast.outDir)).toEqual(filesIn(rows.outDir));
    const ids = readFileSync(join(fast.outDir, 'requests-00001.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).custom_id as string);
    expect(ids).toEqual([
      expect.stringMatching(/^sha256-/),
      '"'.repeat(200),
      expect.stringMatching(/^sha256-/),
      'é'.repeat(128),
      'row-5',
      'a"b\\c',
      'tab\there',
    ]);
  });

  it('conserves rows: every data row is a request or a rejection, in source order', async () => {
    const reviews = reviewRows(300, 11);
    const table = reviews.map((r, i) =>
      i % 37 === 5 ? [r.id] : [i % 41 === 3 ? 'r1' : r.id, r.review, r.rating],
    );
    const input = fileWith(dir, 'reviews.csv', csvText(['id', 'review', 'rating'], table));
    const result = await prepare(input, {
      outDir: join(dir, 'conserve'),
      model: 'qwen-plus',
      template: '{{review}}',
      idColumn: 'id',
      maxLinesPerFile: 64,
    });
    expect(result.rows).toBe(300);
    const requested = result.shards.flatMap((s) =>
      readFileSync(join(result.outDir, s.file), 'utf8')
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l).custom_id as string),
    );
    const rejected = readFileSync(join(result.outDir, 'rejections.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { row: number; code: string });
    expect(requested.length + rejected.length).toBe(300);
    expect(new Set(requested).size).toBe(requested.length);
    expect(rejected.map((r) => r.code).sort()).toEqual(
      [...new Set(rejected.map((r) => r.code))].length > 0 ? rejected.map((r) => r.code).sort() : [],
    );
    expect(new Set(rejected.map((r) => r.code))).toEqual(
      new Set(['BP_ROW_FIELD_COUNT', 'BP_DUPLICATE_CUSTOM_ID']),
    );
    expect(result.shards.every((s) => s.lines <= 64)).toBe(true);
  });

  it('reads JSONL tables through the Row path', async () => {
    const input = fileWith(
      dir,
      'items.jsonl',
      '{"id":12345678901234567890,"t":"a"}\n{"id":2,"t":{"nested":true}}\n{"id":3}\n',
    );
    const result = await prepare(input, {
      outDir: join(dir, 'jsonl'),
      model: 'qwen-plus',
      template: 'Say {{t}}',
      idColumn: 'id',
    });
    expect(result.engine).toBe('rows');
    const lines = readFileSync(join(result.outDir, 'requests-00001.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.custom_id, l.body.messages[0].content])).toEqual([
      ['12345678901234567890', 'Say a'],
      ['2', 'Say {"nested":true}'],
    ]);
    expect(result.rejections.by_code).toEqual({ BP_TEMPLATE_MISSING_COLUMN: 1 });
  });

  it('fails the run early when the template names a missing column, on either engine', async () => {
    const input = fileWith(dir, 'few.csv', 'id,text\n1,a\n');
    for (const engine of ['auto', 'rows'] as const) {
      await expect(
        prepare(input, { outDir: join(dir, `missing-${engine}`), model: 'm', template: '{{txt}}', engine }),
      ).rejects.toMatchObject({
        code: 'BP_TEMPLATE_MISSING_COLUMN',
        context: { file: input, line: 2, row: 1, column: 'txt' },
      });
    }
  });

  it('rejects every row for a model the region does not offer, on either engine', async () => {
    const input = fileWith(dir, 'two.csv', 'id,text\n1,a\n2,b\n');
    const { fast, rows } = await bothEngines(input, {
      model: 'qwen3.5-plus',
      template: '{{text}}',
      provider: 'dashscope',
    });
    expect(fast.rejections.by_code).toEqual({ BP_MODEL_NOT_OFFERED: 2 });
    expect(filesIn(fast.outDir)).toEqual(filesIn(rows.outDir));
  });

  it('applies the context check on the fast path exactly as on the Row path', async () => {
    const long = Array.from({ length: 500 }, (_, i) => `w${i}`).join(' ');
    const input = fileWith(
      dir,
      'ctx.csv',
      csvText(
        ['id', 'text'],
        [
          ['1', long],
          ['2', 'short'],
        ],
      ),
    );
    const { fast, rows } = await bothEngines(input, {
      model: 'qwen-plus',
      template: '{{text}}',
      contextWindows: { 'qwen-plus': 200 },
    });
    expect(fast.rejections.by_code).toEqual({ BP_CONTEXT_EXCEEDED: 1 });
    expect(filesIn(fast.outDir)).toEqual(filesIn(rows.outDir));
  });
});
