import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { customIdFor } from '../../src/core/requests/custom-id.js';
import { RequestBuilder } from '../../src/core/requests/request-builder.js';
import { RENDER_THREAD_AFTER_ROWS } from '../../src/core/requests/request-maker.js';
import type { ToRequestsOptions } from '../../src/core/requests/request-options.js';
import { type PrepareOptions, type PrepareResult, prepare } from '../../src/jobs/prepare.js';
import type { ProviderProfile } from '../../src/providers/profile.js';
import { resolveProfile } from '../../src/providers/resolve-profile.js';
import { shardRequests } from '../../src/sinks/shard-requests.js';
import { csvSource } from '../../src/sources/csv-source.js';
import { toRequests } from '../../src/transforms/to-requests.js';
import { validateRequests } from '../../src/transforms/validate-requests.js';
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

/** The custom_ids of the request lines, file after file (one model: files follow the rows). */
function requestIds(result: PrepareResult): string[] {
  return result.shards.flatMap((s) =>
    readFileSync(join(result.outDir, s.file), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).custom_id as string),
  );
}

function rejectionsOf(outDir: string): Array<{ row: number; line: number; code: string; message: string }> {
  const text = readFileSync(join(outDir, 'rejections.jsonl'), 'utf8');
  return text === ''
    ? []
    : text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l));
}

/**
 * Every row of the table comes out exactly once, in source order: its number in rejections.jsonl, or
 * its custom_id (`ids[n - 1]` for row n) in the request files, the rows not rejected in their order.
 */
function expectConserved(result: PrepareResult, ids: string[]): void {
  const rejected = rejectionsOf(result.outDir).map((r) => r.row);
  expect(rejected).toEqual([...rejected].sort((a, b) => a - b));
  expect(new Set(rejected).size).toBe(rejected.length);
  expect(rejected.every((n) => Number.isInteger(n) && n >= 1 && n <= ids.length)).toBe(true);
  const isRejected = new Set(rejected);
  const kept = ids.filter((_, i) => !isRejected.has(i + 1));
  expect(requestIds(result)).toEqual(kept);
  expect(result.requests + result.rejected).toBe(ids.length);
  expect(result.rows).toBe(ids.length);
}

/** The request lines of every accepted row, in order, from every request file. */
function requestLines(result: PrepareResult): string[] {
  return result.shards.flatMap((s) =>
    readFileSync(join(result.outDir, s.file), 'utf8').trimEnd().split('\n'),
  );
}

/**
 * The plain reference for a CSV table: csv-parse reads it, the request of each row is built as an
 * object and serialized with JSON.stringify. Undefined for a row the builder rejects.
 */
function referenceLines(file: string, options: ToRequestsOptions): Array<string | undefined> {
  const [header, ...rows] = parse(readFileSync(file), { bom: true, relax_column_count: true }) as string[][];
  const builder = RequestBuilder.create({ ...options, onWarning: undefined });
  return rows.map((cells, i) => {
    const values = Object.fromEntries(header!.map((name, c) => [name, cells[c] ?? '']));
    const built = builder.build({ kind: 'row', index: i + 1, file, line: 0, values });
    if (built instanceof Promise) throw new Error('a template builds at once');
    return built.kind === 'request' ? JSON.stringify(built.request) : undefined;
  });
}

/** prepare() (batches of rows over the file's bytes), and the same stages with a user's pass-through Transform between source and requests (one Row object at a time). */
async function bothPaths(input: string, options: Omit<PrepareOptions, 'outDir'>) {
  const batches = await prepare(input, { ...options, outDir: join(dir, `batches-${++runs}`) });
  const {
    model,
    template,
    system,
    idColumn,
    endpoint,
    provider,
    maxLinesPerFile,
    relaxColumnCount,
    enableThinking,
    temperature,
    contextWindows,
  } = options;
  const profile = resolveProfile({ provider: provider ?? 'local', contextWindows, maxLinesPerFile });
  const outDir = join(dir, `rows-${runs}`);
  const sink = shardRequests({ outDir, provider: profile });
  const build = toRequests({
    model,
    template,
    system,
    idColumn,
    endpoint,
    enableThinking,
    temperature,
    provider: profile,
  });
  const check = validateRequests({ provider: profile, endpoint });
  await pipeline(
    csvSource(input, { relaxColumnCount }),
    new Transform({ objectMode: true, transform: (row, _encoding, done) => done(null, row) }),
    build,
    check,
    sink,
  );
  const rows = { ...sink.summary!, outDir, warnings: [...build.warnings.list(), ...check.warnings.list()] };
  return { batches, rows };
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
  it('writes, from the CSV bytes, the lines csv-parse and JSON.stringify make of the same table, one Row at a time or in batches (property)', async () => {
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
          const options: Omit<PrepareOptions, 'outDir'> = {
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
          const { batches: fast, rows: slow } = await bothPaths(input, options);
          expect(filesIn(fast.outDir)).toEqual(filesIn(slow.outDir));
          expect(fast.warnings).toEqual(slow.warnings);
          // Every accepted row's line is the reference's; the rows rejected are the ragged ones
          // (unless relaxColumnCount), empty embeddings inputs, and repeated ids.
          const { maxLinesPerFile: _lines, relaxColumnCount: _relax, ...requestOptions } = options;
          const reference = referenceLines(input, requestOptions);
          const rejected = new Set(rejectionsOf(fast.outDir).map((r) => r.row));
          expect(requestLines(fast)).toEqual(reference.filter((_, i) => !rejected.has(i + 1)));
          for (const r of rejectionsOf(fast.outDir)) {
            const ragged = rows[r.row - 1]!.length !== 3;
            const empty =
              reference[r.row - 1] === undefined || JSON.parse(reference[r.row - 1]!).body.input === '';
            expect(
              (r.code === 'BP_ROW_FIELD_COUNT' && ragged && !o.relaxColumnCount) ||
                (r.code === 'BP_BODY_INVALID' && empty) ||
                r.code === 'BP_DUPLICATE_CUSTOM_ID',
            ).toBe(true);
          }
          // Every row of the generated table comes out once: as a request line or a rejection. (This
          // compared requests + rejected with `rows`, which the sharder counts as that very sum.)
          const key = o.idColumn === null ? -1 : ['a', 'b', 'c'].indexOf(o.idColumn);
          const ids = rows.map((cells, i) =>
            key === -1 ? `row-${i + 1}` : customIdFor(i + 1, cells[key] ?? ''),
          );
          expectConserved(fast, ids);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('writes the reference lines for a table that fills many read and write buffers', async () => {
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
    const options = { model: 'qwen-plus', template: 'Rate: {{review}}', idColumn: 'id' };
    const { batches: fast, rows } = await bothPaths(input, { ...options, maxLinesPerFile: 3000 });
    expect(fast.requests).toBe(8000);
    expect(fast.shards.map((s) => s.lines)).toEqual([3000, 3000, 2000]);
    expect(filesIn(fast.outDir)).toEqual(filesIn(rows.outDir));
    expect(requestLines(fast)).toEqual(referenceLines(input, options));
  });

  it('renders on threads past the first rows of a large table, CSV or JSON Lines, the lines of the reference, rejections in place', async () => {
    const count = RENDER_THREAD_AFTER_ROWS * 2 + 5000;
    const reviews = reviewRows(count, 9);
    // Every 997th row is short (a rejection), every 1009th has no review (JSON: a missing column).
    const csvRows = reviews.map((r, i) => (i % 997 === 500 ? [r.id] : [r.id, r.review, r.rating]));
    const csv = fileWith(dir, 'threads.csv', csvText(['id', 'review', 'rating'], csvRows));
    const jsonl = fileWith(
      dir,
      'threads.jsonl',
      reviews
        .map((r, i) =>
          i % 1009 === 600
            ? JSON.stringify({ id: r.id, rating: r.rating })
            : i % 1013 === 7
              ? '{"id": broken'
              : // Some lines escape characters JSON.stringify writes as they are: those are read as text.
                i % 31 === 3
                ? JSON.stringify({ id: r.id, review: r.review, rating: r.rating }).replaceAll('é', '\\u00e9')
                : // An escaped member name (the scan leaves the line to JSON.parse); many members.
                  i % 1019 === 11
                  ? JSON.stringify({ id: r.id, review: r.review, rating: r.rating }).replace(
                      '"id"',
                      '"i\\u0064"',
                    )
                  : i % 1021 === 13
                    ? JSON.stringify({
                        ...Object.fromEntries(Array.from({ length: 40 }, (_, k) => [`x${k}`, k])),
                        id: r.id,
                        review: r.review,
                        rating: r.rating,
                      })
                    : JSON.stringify({ id: r.id, review: r.review, rating: r.rating }),
        )
        .join('\n'),
    );
    const options = { model: 'qwen-plus', template: 'Rate: {{review}} ({{rating}})', idColumn: 'id' };
    const fromCsv = await prepare(csv, { ...options, outDir: join(dir, 'threads-csv') });
    expect(fromCsv.requests).toBe(csvRows.filter((r) => r.length === 3).length);
    // The reference reads short rows relaxed; prepare rejects them (BP_INPUT_COLUMN_COUNT), so they are left out.
    expect(requestLines(fromCsv)).toEqual(
      referenceLines(csv, options).filter((line, i) => line !== undefined && csvRows[i]!.length === 3),
    );
    expectConserved(
      fromCsv,
      csvRows.map((r) => r[0]!),
    );
    const fromJsonl = await prepare(jsonl, { ...options, outDir: join(dir, 'threads-jsonl') });
    const builder = RequestBuilder.create({ ...options, onWarning: undefined });
    const expected = readFileSync(jsonl, 'utf8')
      .split('\n')
      .flatMap((text, i) => {
        let values: Record<string, unknown>;
        try {
          values = JSON.parse(text) as Record<string, unknown>;
        } catch {
          return [];
        }
        const built = builder.build({ kind: 'row', index: i + 1, file: jsonl, line: i + 1, values });
        return !(built instanceof Promise) && built.kind === 'request' ? [JSON.stringify(built.request)] : [];
      });
    expect(requestLines(fromJsonl)).toEqual(expected);
    expect(fromJsonl.rejections.by_code).toEqual({
      BP_INPUT_PARSE: reviews.filter((_, i) => i % 1013 === 7 && i % 1009 !== 600).length,
      BP_TEMPLATE_MISSING_COLUMN: reviews.filter((_, i) => i % 1009 === 600).length,
    });
    expect(rejectionsOf(fromJsonl.outDir).map((r) => r.row)).toEqual(
      reviews.flatMap((_, i) => (i % 1009 === 600 || i % 1013 === 7 ? [i + 1] : [])),
    );
  }, 60_000);

  it('writes keys that need deriving or unescaping as the reference does', async () => {
    const keys = [
      'x'.repeat(300),
      '"'.repeat(200),
      'é'.repeat(257),
      'é'.repeat(256),
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
    const options = { model: 'qwen-plus', template: '{{text}}', idColumn: 'id' };
    const { batches: fast, rows } = await bothPaths(input, options);
    expect(filesIn(fast.outDir)).toEqual(filesIn(rows.outDir));
    expect(requestLines(fast)).toEqual(referenceLines(input, options));
    const ids = readFileSync(join(fast.outDir, 'requests-00001.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).custom_id as string);
    expect(ids).toEqual([
      expect.stringMatching(/^sha256-/),
      '"'.repeat(200),
      expect.stringMatching(/^sha256-/),
      'é'.repeat(256),
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
    expectConserved(
      result,
      table.map((cells) => cells[0]!),
    );
    expect(new Set(requestIds(result)).size).toBe(result.requests);
    const rejected = rejectionsOf(result.outDir);
    // Exactly the rows built to fail: short rows, and every "r1" after the first.
    const short = table.flatMap((cells, i) => (cells.length === 1 ? [i + 1] : []));
    const r1 = table.flatMap((cells, i) => (cells.length > 1 && cells[0] === 'r1' ? [i + 1] : []));
    expect(rejected.filter((r) => r.code === 'BP_ROW_FIELD_COUNT').map((r) => r.row)).toEqual(short);
    expect(rejected.filter((r) => r.code === 'BP_DUPLICATE_CUSTOM_ID').map((r) => r.row)).toEqual(
      r1.slice(1),
    );
    expect(rejected).toHaveLength(short.length + r1.length - 1);
    // Each duplicate names the line the first "r1" starts on (reviews hold quoted newlines).
    const lineOf = (n: number) =>
      1 + table.slice(0, n - 1).reduce((sum, cells) => sum + cells.join('').split('\n').length, 1);
    for (const r of rejected.filter((r) => r.code === 'BP_DUPLICATE_CUSTOM_ID')) {
      expect(r.line).toBe(lineOf(r.row));
      expect(r.message).toBe(
        `custom_id "r1" is already used by line ${lineOf(r1[0]!)}; custom_ids must be unique across the run (results are joined back by them)`,
      );
    }
    expect(result.shards.every((s) => s.lines <= 64)).toBe(true);
  });

  it('reads JSONL tables', async () => {
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

  it('fails the run early when the template names a missing column, from CSV and from JSONL', async () => {
    for (const [name, text] of [
      ['few.csv', 'id,text\n1,a\n'],
      ['few.jsonl', '{"id":1,"text":"a"}\n'],
    ] as const) {
      const input = fileWith(dir, name, text);
      await expect(
        prepare(input, { outDir: join(dir, `missing-${name}`), model: 'm', template: '{{txt}}' }),
      ).rejects.toMatchObject({
        code: 'BP_TEMPLATE_MISSING_COLUMN',
        context: { file: input, line: name.endsWith('.csv') ? 2 : 1, row: 1, column: 'txt' },
      });
    }
  });

  it('fails the run for a model the region does not offer, after writing every row to rejections.jsonl', async () => {
    const input = fileWith(dir, 'two.csv', 'id,text\n1,a\n2,b\n');
    {
      const outDir = join(dir, 'not-offered');
      const run = prepare(input, {
        outDir,
        model: 'qwen3.5-plus',
        template: '{{text}}',
        provider: 'dashscope',
      });
      await expect(run).rejects.toMatchObject({
        code: 'BP_MODEL_NOT_OFFERED',
        context: { option: 'model' },
        message: expect.stringMatching(
          /^model qwen3\.5-plus is not offered for batches by Alibaba Cloud Model Studio, international \(Singapore\), provider "dashscope" \(offered: qwen-max, qwen-plus, qwen-flash, qwen-turbo\).*every row was rejected and written to .*rejections\.jsonl/,
        ),
      });
      expect(rejectionsOf(outDir).map((r) => [r.row, r.code])).toEqual([
        [1, 'BP_MODEL_NOT_OFFERED'],
        [2, 'BP_MODEL_NOT_OFFERED'],
      ]);
    }
  });

  it('warns when requests for the local service name a model DashScope does not offer (its batches then failed with no word before)', async () => {
    const input = fileWith(dir, 'local-model.csv', 'id,text\n1,a\n2,b\n');
    {
      const seen: string[] = [];
      const other = await prepare(input, {
        outDir: join(dir, 'local-model'),
        model: 'gpt-4o-mini',
        template: '{{text}}',
        provider: 'local',
        onWarning: (w) => seen.push(w.code),
      });
      expect(other.requests).toBe(2);
      expect(seen).toEqual(['BP_WARN_LOCAL_MODEL']);
      expect(other.warnings.map((w) => [w.code, w.message])).toEqual([
        ['BP_WARN_LOCAL_MODEL', expect.stringContaining('model "gpt-4o-mini" is not one DashScope offers')],
      ]);
      const offered = await prepare(input, {
        outDir: join(dir, 'local-model-ok'),
        model: 'qwen-plus',
        template: '{{text}}',
        provider: 'local',
      });
      expect(offered.warnings).toEqual([]);
    }
  });

  it('fails the run for an endpoint the region does not offer, naming what it offers', async () => {
    const input = fileWith(dir, 'embed.csv', 'text\na\n');
    const outDir = join(dir, 'endpoint-not-offered');
    await expect(
      prepare(input, {
        outDir,
        model: 'text-embedding-v4',
        endpoint: '/v1/embeddings',
        template: '{{text}}',
        provider: 'dashscope',
      }),
    ).rejects.toMatchObject({
      code: 'BP_ENDPOINT_NOT_OFFERED',
      message: expect.stringContaining(
        'endpoint /v1/embeddings is not offered for batches by Alibaba Cloud Model Studio, international (Singapore), provider "dashscope" (offered: /v1/chat/completions)',
      ),
    });
    expect(rejectionsOf(outDir).map((r) => r.code)).toEqual(['BP_ENDPOINT_NOT_OFFERED']);
  });

  it('takes JSONL options with the names jsonlSource has: maxRowSize and bigIntegers (prepare never passed bigIntegers)', async () => {
    const input = fileWith(dir, 'big.jsonl', '{"id":12345678901234567890,"t":"a"}\n');
    const exact = await prepare(input, {
      outDir: join(dir, 'big-string'),
      model: 'qwen-plus',
      template: '{{id}}',
    });
    const lossy = await prepare(input, {
      outDir: join(dir, 'big-number'),
      model: 'qwen-plus',
      template: '{{id}}',
      bigIntegers: 'number',
    });
    const prompt = (result: PrepareResult) =>
      JSON.parse(readFileSync(join(result.outDir, 'requests-00001.jsonl'), 'utf8')).body.messages[0].content;
    expect(prompt(exact)).toBe('12345678901234567890');
    expect(exact.warnings).toEqual([]);
    expect(prompt(lossy)).toBe('12345678901234567000');
    expect(lossy.warnings.map((w) => [w.code, w.first])).toEqual([
      ['BP_WARN_BIG_INTEGER', { file: input, line: 1, row: 1 }],
    ]);
    await expect(
      prepare(input, {
        outDir: join(dir, 'big-small'),
        model: 'qwen-plus',
        template: '{{id}}',
        maxRowSize: 10,
      }),
    ).rejects.toMatchObject({ code: 'BP_ROW_TOO_LARGE' });
  });

  it("derives ids at the profile's limits.maxCustomIdChars, in batches and one Row at a time (both used the 256-byte constant)", async () => {
    const base = resolveProfile('local');
    const profile: ProviderProfile = { ...base, limits: { ...base.limits, maxCustomIdChars: 80 } };
    const input = fileWith(
      dir,
      'short-ids.csv',
      csvText(
        ['id', 't'],
        [
          ['1'.repeat(80), 'a'],
          ['2'.repeat(81), 'b'],
        ],
      ),
    );
    const requests = { model: 'qwen-plus', template: '{{t}}', idColumn: 'id', provider: profile };
    const rules = { singleModel: false, checkContext: true, warnThinkingDefault: false };
    const outDirs = [join(dir, 'short-ids-batches'), join(dir, 'short-ids-rows')];
    await pipeline(
      csvSource(input),
      toRequests(requests),
      validateRequests({ provider: profile, ...rules }),
      shardRequests({ outDir: outDirs[0]!, provider: profile }),
    );
    await pipeline(
      csvSource(input),
      new Transform({ objectMode: true, transform: (row, _encoding, done) => done(null, row) }),
      toRequests(requests),
      validateRequests({ provider: profile, ...rules }),
      shardRequests({ outDir: outDirs[1]!, provider: profile }),
    );
    expect(filesIn(outDirs[0]!)).toEqual(filesIn(outDirs[1]!));
    const ids = readFileSync(join(outDirs[0]!, 'requests-00001.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).custom_id);
    expect(ids).toEqual(['1'.repeat(80), customIdFor(2, '2'.repeat(81), 80)]);
    expect(ids[1]).toMatch(/^sha256-/);
  });

  it('applies the context check to lines rendered from bytes as to built requests', async () => {
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
    const { batches: fast, rows } = await bothPaths(input, {
      model: 'qwen-plus',
      template: '{{text}}',
      contextWindows: { 'qwen-plus': 200 },
    });
    expect(fast.rejections.by_code).toEqual({ BP_CONTEXT_EXCEEDED: 1 });
    expect(filesIn(fast.outDir)).toEqual(filesIn(rows.outDir));
    expect(requestLines(fast)).toEqual([
      referenceLines(input, { model: 'qwen-plus', template: '{{text}}' })[1],
    ]);
  });
});
