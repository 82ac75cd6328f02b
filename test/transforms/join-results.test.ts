import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { csvSink } from '../../src/sinks/csv-sink.js';
import { jsonlSink } from '../../src/sinks/jsonl-sink.js';
import { csvSource } from '../../src/sources/csv-source.js';
import { jsonlSource } from '../../src/sources/jsonl-source.js';
import { resultSource } from '../../src/sources/result-source.js';
import { joinResults } from '../../src/transforms/join-results.js';
import type { Row } from '../../src/types.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, settled, tempDir } from '../helpers.js';
import { scenarios, writeScenario } from '../support/join-scenario.js';
import { answerLine, embeddingLine, errorLine } from '../support/results.js';

const dir = tempDir('bp-join-results-');
let runs = 0;

/** Runs results through joinResults and collects the joined rows. */
async function joined(results: NodeJS.ReadableStream, options: Parameters<typeof joinResults>[0]) {
  const stage = joinResults(options);
  const rows: Row[] = [];
  await pipeline(results, stage, async (source: AsyncIterable<Row>) => {
    for await (const row of source) rows.push(row);
  });
  return { rows, summary: stage.summary! };
}

describe('joinResults', () => {
  it('puts every source row out exactly once, in order, with its own result in every column (property)', async () => {
    await fc.assert(
      fc.asyncProperty(scenarios, async (s) => {
        const name = `p${++runs}`;
        const files = writeScenario(dir, s, name);
        const results = resultSource(files.results, files.structured);
        const { rows, summary } = await joined(results, {
          source: files.source,
          idColumn: files.idColumn,
          rejections: [files.rejections],
          partitions: s.partitions,
          tempDir: dir,
          ...files.structured,
        });
        expect(rows.map((r) => r.index)).toEqual(s.texts.map((_, i) => i + 1));
        expect(summary.columns).toEqual(files.columns);
        const columns = ['text', ...files.columns];
        expect(rows.map((r) => Object.fromEntries(columns.map((c) => [c, r.values[c]])))).toEqual(
          files.expected,
        );
        expect(summary.rows).toBe(s.texts.length);
        expect(Object.values(summary.statuses).reduce((a, b) => a + b, 0)).toBe(s.texts.length);
        expect(results.problems.count).toBe(files.problems);
      }),
      { numRuns: 80 },
    );
    // Temporary partition files are removed after each join.
    expect(readdirSync(dir).filter((f) => f.startsWith('batchpipe-join-'))).toEqual([]);
  });

  it('spans many blocks per partition (tens of thousands of rows, few partitions)', async () => {
    const count = 30_000;
    const texts = Array.from({ length: count }, (_, i) => `text ${i}`);
    const source = fileWith(
      dir,
      'many.csv',
      csvText(
        ['text'],
        texts.map((t) => [t]),
      ),
    );
    const lines: string[] = [];
    for (let i = count; i >= 1; i--) {
      if (i % 1000 === 0) continue; // missing
      lines.push(
        i % 97 === 0
          ? errorLine(`row-${i}`, 'expired')
          : answerLine({ custom_id: `row-${i}`, content: `answer ${i}` }),
      );
    }
    const results = fileWith(dir, 'many.jsonl', `${lines.join('\n')}\n`);
    const { rows, summary } = await joined(resultSource(results), { source, partitions: 2, tempDir: dir });
    expect(rows).toHaveLength(count);
    rows.forEach((row, i) => {
      const n = i + 1;
      expect(row.index).toBe(n);
      const status = n % 1000 === 0 ? 'missing' : n % 97 === 0 ? 'expired' : 'ok';
      expect(row.values.status).toBe(status);
      if (status === 'ok') expect(row.values.content).toBe(`answer ${n}`);
    });
    expect(summary.statuses.missing).toBe(30);
  });

  it('takes raw result lines and a single-pass source stream (spilled to disk)', async () => {
    const source = csvSource(fileWith(dir, 's.csv', 'text\nx\ny\nz\n'));
    const lines = [
      answerLine({ custom_id: 'row-3', content: 'Z' }),
      JSON.parse(errorLine('row-1', 'cancelled')),
      answerLine({ custom_id: 'row-2', content: 'Y' }),
    ];
    const { rows } = await joined(Readable.from(lines), { source });
    expect(rows.map((r) => [r.values.text, r.values.status, r.values.content])).toEqual([
      ['x', 'cancelled', null],
      ['y', 'ok', 'Y'],
      ['z', 'ok', 'Z'],
    ]);
  });

  it('joins JSONL sources on a key column, numbers and strings alike, as prepare made the ids', async () => {
    const source = fileWith(
      dir,
      's.jsonl',
      '{"id": 17, "q": "a"}\n{"id": "x-1", "q": "b"}\n{"id": null, "q": "c"}\n',
    );
    const results = fileWith(
      dir,
      'r.jsonl',
      [
        answerLine({ custom_id: '17', content: 'one' }),
        answerLine({ custom_id: 'x-1', content: 'two' }),
        answerLine({ custom_id: 'row-3', content: 'three' }),
      ].join('\n'),
    );
    const { rows } = await joined(resultSource(results), {
      source: () => jsonlSource(source),
      idColumn: 'id',
    });
    expect(rows.map((r) => r.values.content)).toEqual(['one', 'two', 'three']);
  });

  it('gives rows the source could not read their status, with empty source columns', async () => {
    const source = fileWith(dir, 'bad.csv', 'a,b\n1,2\n3\n"x"y,4\n5,6\n');
    const results = fileWith(dir, 'bad.jsonl', answerLine({ custom_id: 'row-4', content: 'ok' }));
    const { rows } = await joined(resultSource(results), { source });
    expect(rows.map((r) => [r.index, r.values.a, r.values.status, r.values.error_code])).toEqual([
      [1, '1', 'missing', 'BP_RESULT_MISSING'],
      [2, '', 'rejected', 'BP_ROW_FIELD_COUNT'],
      [3, '', 'rejected', 'BP_INPUT_PARSE'],
      [4, '5', 'ok', null],
    ]);
  });

  it('prefixes result columns the source already has with result_, and adds the extras asked for', async () => {
    const source = fileWith(dir, 'c.csv', 'status,content,result_status\nS,C,R\n');
    const results = fileWith(dir, 'c.jsonl', answerLine({ custom_id: 'row-1', content: 'A', model: 'm1' }));
    const { rows, summary } = await joined(resultSource(results), {
      source,
      include: ['custom_id', 'model', 'finish_reason'],
    });
    expect(summary.columns).toEqual([
      'result_result_status',
      'result_content',
      'error_code',
      'error_message',
      'prompt_tokens',
      'completion_tokens',
      'custom_id',
      'model',
      'finish_reason',
    ]);
    expect(rows[0]!.values).toEqual({
      status: 'S',
      content: 'C',
      result_status: 'R',
      result_result_status: 'ok',
      result_content: 'A',
      error_code: null,
      error_message: null,
      prompt_tokens: 20,
      completion_tokens: 3,
      custom_id: 'row-1',
      model: 'm1',
      finish_reason: 'stop',
    });
  });

  it('puts parsed fields in their own columns (labels; a schema, flattened, with a prefix)', async () => {
    const source = fileWith(dir, 'l.csv', 'text\na\nb\n');
    const labels = fileWith(
      dir,
      'l.jsonl',
      [
        answerLine({ custom_id: 'row-1', content: 'Positive' }),
        answerLine({ custom_id: 'row-2', content: 'meh' }),
      ].join('\n'),
    );
    const withLabels = await joined(resultSource(labels, { labels: ['positive', 'negative'] }), {
      source,
      labels: ['positive', 'negative'],
    });
    expect(withLabels.rows.map((r) => [r.values.status, r.values.label, r.values.error_code])).toEqual([
      ['ok', 'positive', null],
      ['invalid_output', null, 'BP_OUTPUT_SCHEMA'],
    ]);
    expect(withLabels.rows[0]!.values).not.toHaveProperty('content');

    const schema = z.object({
      name: z.string(),
      address: z.object({ city: z.string() }),
      tags: z.array(z.string()),
    });
    const answer = { name: 'Ada', address: { city: 'London' }, tags: ['x', 'y'] };
    const extracted = fileWith(
      dir,
      's.jsonl',
      answerLine({ custom_id: 'row-1', content: JSON.stringify(answer) }),
    );
    const withSchema = await joined(resultSource(extracted, { schema }), {
      source,
      schema,
      fieldPrefix: 'x_',
      include: ['content'],
    });
    expect(withSchema.summary.columns.slice(0, 4)).toEqual(['status', 'x_name', 'x_address.city', 'x_tags']);
    expect(withSchema.rows[0]!.values).toMatchObject({
      x_name: 'Ada',
      'x_address.city': 'London',
      x_tags: ['x', 'y'],
      content: JSON.stringify(answer),
    });
    expect(withSchema.rows[1]!.values).toMatchObject({ status: 'missing', x_name: null });
  });

  it('makes embeddings a vector column', async () => {
    const source = fileWith(dir, 'e.csv', 'text\na\nb\n');
    const results = fileWith(
      dir,
      'e.jsonl',
      [embeddingLine('row-1', [0.5, 1]), errorLine('row-2', 'http')].join('\n'),
    );
    const { rows, summary } = await joined(resultSource(results), { source, endpoint: '/v1/embeddings' });
    expect(summary.columns[1]).toBe('embedding');
    expect(rows.map((r) => r.values.embedding)).toEqual([[0.5, 1], null]);
  });

  it('names the vector column from the endpoint, not from the data (every embedding failed: still embedding)', async () => {
    const source = fileWith(dir, 'e2.csv', 'text\na\nb\n');
    const failed = fileWith(
      dir,
      'e2.jsonl',
      [errorLine('row-1', 'http'), errorLine('row-2', 'expired')].join('\n'),
    );
    const embeddings = await joined(resultSource(failed), { source, endpoint: '/v1/embeddings' });
    expect(embeddings.summary.columns).toEqual([
      'status',
      'embedding',
      'error_code',
      'error_message',
      'prompt_tokens',
      'completion_tokens',
    ]);
    expect(Object.keys(embeddings.rows[0]!.values)).toContain('embedding');
    // Chat (the default) is `content`, even when what came back was a vector.
    const vector = fileWith(dir, 'e3.jsonl', embeddingLine('row-1', [1, 2]));
    const chat = await joined(resultSource(vector), { source });
    expect(chat.summary.columns[1]).toBe('content');
    expect(chat.rows[0]!.values.content).toEqual([1, 2]);
  });

  it('serves several rows from one result, keeps the best of several results, and counts orphans', async () => {
    const source = fileWith(dir, 'd.csv', 'key,text\nA,1\nB,2\nA,3\n');
    const results = fileWith(
      dir,
      'd.jsonl',
      [
        answerLine({ custom_id: 'A', content: 'first' }),
        errorLine('B', 'http'),
        answerLine({ custom_id: 'B', content: 'retried' }),
        errorLine('B', 'expired'),
        answerLine({ custom_id: 'nobody', content: '?' }),
      ].join('\n'),
    );
    const { rows, summary } = await joined(resultSource(results), { source, idColumn: 'key' });
    expect(rows.map((r) => [r.values.text, r.values.status, r.values.content])).toEqual([
      ['1', 'ok', 'first'],
      ['2', 'ok', 'retried'],
      ['3', 'ok', 'first'],
    ]);
    expect(summary).toMatchObject({ results: 5, duplicates: 2, orphans: 1 });
  });

  it('writes a re-ask request for each invalid answer, from the original request', async () => {
    const source = fileWith(dir, 'q.csv', 'text\ngood\nbad\n');
    const requestLine = (id: string, content: string) =>
      JSON.stringify({
        custom_id: id,
        method: 'POST',
        url: '/v1/chat/completions',
        body: {
          model: 'qwen-plus',
          messages: [{ role: 'user', content }],
          response_format: { type: 'json_object' },
        },
      });
    const requests = fileWith(
      dir,
      'requests.jsonl',
      `${requestLine('row-1', 'good')}\n${requestLine('row-2', 'bad')}\n`,
    );
    const results = fileWith(
      dir,
      'q.jsonl',
      [
        answerLine({ custom_id: 'row-1', content: '{"label": "a"}' }),
        answerLine({ custom_id: 'row-2', content: 'dunno' }),
      ].join('\n'),
    );
    const out = join(dir, 'reask.jsonl');
    const { summary } = await joined(resultSource(results, { labels: ['a', 'b'] }), {
      source,
      labels: ['a', 'b'],
      reask: { requests: [requests], out },
    });
    expect(summary.reasked).toBe(1);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ custom_id: 'row-2', method: 'POST', url: '/v1/chat/completions' });
    expect(lines[0].body.response_format).toEqual({ type: 'json_object' });
    expect(lines[0].body.messages).toEqual([
      { role: 'user', content: 'bad' },
      { role: 'assistant', content: 'dunno' },
      {
        role: 'user',
        content:
          'That answer is not valid: label: Invalid option: expected one of "a"|"b" [invalid_value]. Reply again with only the JSON object, matching the required schema.',
      },
    ]);
  });

  it('fails with BP_JOIN_SOURCE_CHANGED when the source reads differently the second time', async () => {
    const first = fileWith(dir, 'v1.csv', 'text\na\nb\n');
    const second = fileWith(dir, 'v2.csv', 'text\na\nb\nc\n');
    let calls = 0;
    const results = fileWith(dir, 'v.jsonl', answerLine({ custom_id: 'row-1', content: 'x' }));
    await expect(
      joined(resultSource(results), { source: () => csvSource(++calls === 1 ? first : second) }),
    ).rejects.toMatchObject({ code: 'BP_JOIN_SOURCE_CHANGED' });
  });

  it('fails with BP_ID_COLUMN_MISSING when the key column is not there', async () => {
    const source = fileWith(dir, 'k.csv', 'text\na\n');
    await expect(joined(Readable.from([]), { source, idColumn: 'id' })).rejects.toMatchObject({
      code: 'BP_ID_COLUMN_MISSING',
      context: { column: 'id', row: 1 },
    });
  });

  it('removes its temporary files when the consumer stops early', async () => {
    const tmp = join(dir, `early-${++runs}`);
    mkdirSync(tmp);
    const source = fileWith(
      dir,
      'early.csv',
      csvText(
        ['text'],
        Array.from({ length: 5000 }, (_, i) => [`t${i}`]),
      ),
    );
    const stage = joinResults({ source, tempDir: tmp });
    Readable.from([answerLine({ custom_id: 'row-1', content: 'x' })]).pipe(stage);
    for await (const _row of stage) break;
    await settled(() => readdirSync(tmp).length === 0);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('checks its options when called', () => {
    expect(() => joinResults({ source: 'a.csv', partitions: 0 })).toThrow(/joinResults: option "partitions"/);
    expect(() => joinResults({ source: 'a.csv', include: ['nope' as 'model'] })).toThrow(
      /option "include.0"/,
    );
  });
});

describe('joinResults with a written table', () => {
  it('JSONL sources with uneven keys no longer lose columns in CSV output (every key any row has, in order of first use)', async () => {
    const source = fileWith(
      dir,
      'uneven.jsonl',
      [
        '{"a": 1}',
        '{"a": 2, "b": "extra"}',
        '{"c": true, "a": 3}',
        '{"a": 4, "status": "mine", "b": "more"}',
      ].join('\n'),
    );
    const results = fileWith(
      dir,
      'uneven-out.jsonl',
      [1, 2, 3, 4].map((n) => answerLine({ custom_id: `row-${n}`, content: `A${n}` })).join('\n'),
    );
    const out = join(dir, 'uneven.csv');
    const stage = joinResults({ source, tempDir: dir });
    await pipeline(resultSource(results), stage, csvSink(out));
    const table = parse(readFileSync(out, 'utf8'), { columns: true }) as Record<string, string>[];
    // A later row's "status" is a source column too: the result's status is result_status.
    expect(Object.keys(table[0]!)).toEqual(['a', 'b', 'c', 'status', ...stage.summary!.columns]);
    expect(stage.summary!.columns.slice(0, 2)).toEqual(['result_status', 'content']);
    expect(table.map((r) => [r.a, r.b, r.c, r.status, r.result_status, r.content])).toEqual([
      ['1', '', '', '', 'ok', 'A1'],
      ['2', 'extra', '', '', 'ok', 'A2'],
      ['3', '', 'true', '', 'ok', 'A3'],
      ['4', 'more', '', 'mine', 'ok', 'A4'],
    ]);
    // JSONL out keeps each row's own keys: the columns a row lacks are left out, not written as null.
    const lines = join(dir, 'uneven-out-rows.jsonl');
    await pipeline(resultSource(results), joinResults({ source, tempDir: dir }), jsonlSink(lines));
    const first = JSON.parse(readFileSync(lines, 'utf8').split('\n')[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ a: 1, result_status: 'ok', content: 'A1' });
    expect(Object.keys(first)).not.toContain('b');
  });

  it('writes the same file whether the source is a path or a factory', async () => {
    const source = fileWith(dir, 'w.csv', 'text\na\nb\n');
    const results = fileWith(dir, 'w.jsonl', answerLine({ custom_id: 'row-2', content: 'B' }));
    const a = await joined(resultSource(results), { source });
    const b = await joined(resultSource(results), { source: () => csvSource(source) });
    expect(a.rows).toEqual(b.rows);
  });
});
