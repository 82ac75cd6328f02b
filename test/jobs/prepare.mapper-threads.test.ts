import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RENDER_THREAD_AFTER_ROWS } from '../../src/core/requests/request-maker.js';
import type { Mapper } from '../../src/core/requests/request-options.js';
import { type PrepareResult, prepare } from '../../src/jobs/prepare.js';
import { shardRequests } from '../../src/sinks/shard-requests.js';
import { csvSource } from '../../src/sources/csv-source.js';
import { toRequests } from '../../src/transforms/to-requests.js';
import { validateRequests } from '../../src/transforms/validate-requests.js';
import { csvText, reviewRows } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir();

/**
 * A mapper that does what real ones do now and then: rows it cannot map (it throws), its own model
 * on some rows (their lines go to files of their own), thinking flags inside extra_body (moved, with a
 * warning), a model that thinks by default (a warning), a message with a role the provider refuses (a
 * rule a line breaks alone), and async bodies from a module written in TypeScript.
 */
const MAPPER = `
export default function mapper(values, row) {
  if (String(values.review ?? '').includes('boom')) throw new Error('cannot map ' + values.id);
  const n = row.index;
  const body = {
    messages: [
      { role: n % 13 === 0 ? 'robot' : 'system', content: 'Rate the review.' },
      { role: 'user', content: 'Title: ' + values.title + '\\nReview: ' + values.review },
    ],
  };
  if (n % 7 === 0) body.model = 'qwen-flash';
  if (n % 17 === 0) body.model = 'qwen3.5-flash';
  if (n % 11 === 0) body.extra_body = { enable_thinking: false, top_k: 3 };
  return body;
}
`;

const mapperFile = fileWith(dir, 'mapper.mjs', MAPPER);
const tsMapperFile = fileWith(
  dir,
  'mapper.ts',
  `interface Values { title?: string; review?: string }
export default async (values: Values) => {
  await Promise.resolve();
  return { messages: [{ role: 'user' as const, content: \`\${values.title}: \${values.review}\` }] };
};
`,
);

async function mapperOf(file: string): Promise<Mapper> {
  return ((await import(pathToFileURL(file).href)) as { default: Mapper }).default;
}

function filesIn(outDir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(outDir).sort()) files[name] = readFileSync(join(outDir, name), 'utf8');
  return files;
}

/** What two prepare results say, apart from where they wrote. */
function summaryOf(result: PrepareResult): unknown {
  const { outDir: _outDir, ...rest } = result;
  return rest;
}

/** A table large enough that its later rows are mapped on threads: ids (one used twice), some short rows, some rows the mapper throws on. */
function bigTable(): { rows: string[][]; count: number } {
  const count = RENDER_THREAD_AFTER_ROWS * 2 + 3000;
  const reviews = reviewRows(count, 5);
  const rows = reviews.map((r, i) => {
    const id = i === RENDER_THREAD_AFTER_ROWS + 500 ? reviews[100]!.id : r.id;
    if (i % 997 === 500) return [id, r.product];
    return [id, r.product, i % 1201 === 77 ? `boom ${r.review}` : r.review];
  });
  return { rows, count };
}

describe('a mapper module on threads', () => {
  it('writes what the same mapper as a function writes on this thread: files, rejections, warnings, models, ids', async () => {
    const { rows, count } = bigTable();
    const input = fileWith(dir, 'big.csv', csvText(['id', 'title', 'review'], rows));
    const options = { model: 'qwen-plus', idColumn: 'id', provider: 'local' as const };
    const [onThreads, onThisThread] = [
      await prepare(input, { ...options, mapper: mapperFile, outDir: join(dir, 'module') }),
      await prepare(input, { ...options, mapper: await mapperOf(mapperFile), outDir: join(dir, 'function') }),
    ];
    expect(filesIn(onThreads.outDir)).toEqual(filesIn(onThisThread.outDir));
    expect(summaryOf(onThreads)).toEqual(summaryOf(onThisThread));
    // What the table holds came out: every kind of rejection, every model, every warning.
    expect(onThreads.requests + onThreads.rejected).toBe(count);
    expect(Object.keys(onThreads.rejections.by_code).sort()).toEqual([
      'BP_BODY_INVALID',
      'BP_DUPLICATE_CUSTOM_ID',
      'BP_MAPPER_FAILED',
      'BP_ROW_FIELD_COUNT',
    ]);
    expect(new Set(onThreads.shards.map((s) => s.model))).toEqual(
      new Set(['qwen-plus', 'qwen-flash', 'qwen3.5-flash']),
    );
    expect(onThreads.warnings.map((w) => w.code).sort()).toEqual([
      'BP_WARN_THINKING_DEFAULT',
      'BP_WARN_THINKING_MOVED',
    ]);
    const duplicate = readFileSync(join(onThreads.outDir, 'rejections.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { row: number; code: string; message: string })
      .find((r) => r.code === 'BP_DUPLICATE_CUSTOM_ID');
    expect(duplicate?.row).toBe(RENDER_THREAD_AFTER_ROWS + 501);
    // Row 101 starts after the header and the lines of the 100 rows before it (some reviews span lines).
    const line = csvText(['id', 'title', 'review'], rows.slice(0, 100)).split('\n').length;
    expect(duplicate?.message).toBe(
      `custom_id "r101" is already used by line ${line}; custom_ids must be unique across the run (results are joined back by them)`,
    );
  }, 60_000);

  it('reads JSON Lines there too, lines that do not parse rejected in place', async () => {
    const { rows } = bigTable();
    const input = fileWith(
      dir,
      'big.jsonl',
      rows
        .map((r, i) =>
          i % 1013 === 9 ? '{"id": broken' : JSON.stringify({ id: r[0], title: r[1], review: r[2] }),
        )
        .join('\n'),
    );
    const options = { model: 'qwen-plus', idColumn: 'id' };
    const onThreads = await prepare(input, {
      ...options,
      mapper: mapperFile,
      outDir: join(dir, 'jsonl-module'),
    });
    const onThisThread = await prepare(input, {
      ...options,
      mapper: await mapperOf(mapperFile),
      outDir: join(dir, 'jsonl-function'),
    });
    expect(filesIn(onThreads.outDir)).toEqual(filesIn(onThisThread.outDir));
    expect(summaryOf(onThreads)).toEqual(summaryOf(onThisThread));
    expect(onThreads.rejections.by_code.BP_INPUT_PARSE).toBe(rows.filter((_, i) => i % 1013 === 9).length);
  }, 60_000);

  it('is checked again in full when the validation is under other rules, and loads a TypeScript module with async bodies', async () => {
    const { rows } = bigTable();
    const input = fileWith(dir, 'other-rules.csv', csvText(['id', 'title', 'review'], rows));
    // Requests built for the local service, validated under DashScope's rules: its models are exclusive.
    const run = async (mapper: Mapper | string, name: string) => {
      const outDir = join(dir, name);
      const sink = shardRequests({ outDir, provider: 'dashscope' });
      await pipeline(
        csvSource(input),
        toRequests({ model: 'qwen-plus', mapper, idColumn: 'id', provider: 'local' }),
        validateRequests({ provider: 'dashscope' }),
        sink,
      );
      return filesIn(outDir);
    };
    expect(await run(mapperFile, 'rules-module')).toEqual(
      await run(await mapperOf(mapperFile), 'rules-function'),
    );
    const ts = await run(tsMapperFile, 'ts-module');
    const lines = Object.entries(ts)
      .filter(([name]) => name.startsWith('requests-'))
      .flatMap(([, text]) => text.trimEnd().split('\n'));
    expect(lines.length).toBeGreaterThan(RENDER_THREAD_AFTER_ROWS * 2);
    const last = JSON.parse(lines.at(-1)!) as { body: { messages: Array<{ content: string }> } };
    const source = rows.at(-1)!;
    expect(last.body.messages[0]!.content).toBe(`${source[1]}: ${source[2]}`);
  }, 60_000);
});
