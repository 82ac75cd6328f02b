import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type JoinTableOptions, joinTable } from '../../src/jobs/join-table.js';
import { csvSink } from '../../src/sinks/csv-sink.js';
import { jsonlSink } from '../../src/sinks/jsonl-sink.js';
import { csvSource } from '../../src/sources/csv-source.js';
import { resultSource } from '../../src/sources/result-source.js';
import { joinResults } from '../../src/transforms/join-results.js';
import { fileWith, tempDir } from '../helpers.js';
import { asCsv, scenarios, writeScenario } from '../support/join-scenario.js';
import { answerLine, embeddingLine, errorLine } from '../support/results.js';

const dir = tempDir('bp-join-table-');
let runs = 0;

const read = (path: string, delimiter = ',') =>
  parse(readFileSync(path, 'utf8'), { columns: true, delimiter, bom: true }) as Record<string, string>[];

/**
 * joinTable (rows read from CSV go out as their own bytes, cells stored as CSV), and the same stages
 * with a user's pass-through Transform before the sink (one Row object at a time: values decoded, cells
 * kept as JSON, the sink encoding every field).
 */
async function bothPaths(options: Omit<JoinTableOptions, 'out'>, ext = 'csv') {
  const n = ++runs;
  const bytes = await joinTable({ ...options, out: join(dir, `bytes-${n}.${ext}`) });
  const { source, results, relaxColumnCount, labels, schema, reask, ...rest } = options;
  const out = join(dir, `rows-${n}.${ext}`);
  // Re-asks of this path go beside the other's, to compare.
  const ownReask = reask && { ...reask, out: `${reask.out}.rows` };
  const joined = joinResults({
    source: () => csvSource(source, { relaxColumnCount }),
    labels,
    schema,
    reask: ownReask,
    ...rest,
  });
  const parsed = resultSource(results, { labels, schema });
  await pipeline(
    parsed,
    joined,
    new Transform({ objectMode: true, transform: (row, _encoding, done) => done(null, row) }),
    ext === 'jsonl' ? jsonlSink(out) : csvSink(out),
  );
  const rows = { ...joined.summary!, problems: parsed.problems.count, out };
  return { bytes, rows };
}

/** A CSV field quoted when it must be, and sometimes when it need not be (sources are written every way). */
function field(value: string, quote: boolean): string {
  const needs = /[",\r\n]/.test(value);
  // An unquoted field may hold a quote after its first character: the scanner reads it literally.
  if (!needs || (quote === false && !/[,\r\n]/.test(value) && !value.startsWith('"')))
    return quote ? `"${value.replaceAll('"', '""')}"` : value;
  return `"${value.replaceAll('"', '""')}"`;
}

const cell = fc.string({
  unit: fc.constantFrom('a', ' ', ',', '"', '\n', 'é', '😀', '\t', 'x"y'),
  maxLength: 8,
});

describe('joinTable', () => {
  it('writes the source rows csv-parse reads, each with its own result, from bytes or from Row objects (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(cell, cell, fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 30 }),
        fc.record({
          eol: fc.constantFrom('\n', '\r\n'),
          bom: fc.boolean(),
          seed: fc.nat(),
          keyed: fc.boolean(),
        }),
        async (cells, how) => {
          const header = how.keyed ? 'id,a,b' : 'a,b';
          const lines = cells.map(([a, b, qa, qb], i) => {
            const fields = [field(a, qa), field(b, qb)];
            return how.keyed ? [`k${i}`, ...fields].join(',') : fields.join(',');
          });
          const source = fileWith(
            dir,
            'src.csv',
            `${how.bom ? '\ufeff' : ''}${[header, ...lines].join(how.eol)}${how.eol}`,
          );
          const results = cells.map((_, i) => {
            const id = how.keyed ? `k${i}` : `row-${i + 1}`;
            return i % 5 === 4
              ? errorLine(id, 'http')
              : answerLine({ custom_id: id, content: `answer "${i}",\n${cells[i]![0]}` });
          });
          const out = fileWith(dir, 'res.jsonl', results.filter((_, i) => i % 7 !== 6).join('\n'));
          const { bytes, rows } = await bothPaths({
            source,
            results: [out],
            idColumn: how.keyed ? 'id' : undefined,
          });
          expect(read(bytes.out)).toEqual(read(rows.out));
          expect(bytes.statuses).toEqual(rows.statuses);
          // The reference: csv-parse's rows (a quote inside an unquoted field is a character), each followed by its own result.
          const sourceRows = parse(readFileSync(source), {
            columns: true,
            bom: true,
            relax_quotes: true,
          }) as Array<Record<string, string>>;
          expect(read(bytes.out)).toEqual(
            sourceRows.map((r, i) => ({
              ...r,
              status: i % 7 === 6 ? 'missing' : i % 5 === 4 ? 'failed' : 'ok',
              content: i % 7 === 6 || i % 5 === 4 ? '' : `answer "${i}",\n${cells[i]![0]}`,
              error_code: expect.any(String),
              error_message: expect.any(String),
              prompt_tokens: i % 7 === 6 || i % 5 === 4 ? '' : '20',
              completion_tokens: i % 7 === 6 || i % 5 === 4 ? '' : '3',
            })),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('conserves rows, from bytes and from Row objects: every row once, in order, with its own result in every column (property)', async () => {
    await fc.assert(
      fc.asyncProperty(scenarios, async (s) => {
        const files = writeScenario(dir, s, `t${++runs}`);
        const { bytes, rows } = await bothPaths({
          source: files.source,
          results: files.results,
          rejections: [files.rejections],
          idColumn: files.idColumn,
          partitions: s.partitions,
          ...files.structured,
        });
        for (const joined of [bytes, rows]) {
          expect(joined.columns).toEqual(files.columns);
          const table = s.texts.length === 0 ? [] : read(joined.out);
          const columns = ['text', ...files.columns];
          expect(table.map((r) => Object.fromEntries(columns.map((c) => [c, r[c]])))).toEqual(
            files.expected.map(asCsv),
          );
          expect(joined.rows).toBe(s.texts.length);
          expect(joined.problems).toBe(files.problems);
        }
        expect(bytes.statuses).toEqual(rows.statuses);
      }),
      { numRuns: 50 },
    );
  });

  it('keeps rows the source cannot read, and rows of another width (relaxColumnCount), in place', async () => {
    const source = fileWith(dir, 'odd.csv', 'a,b\n1,2\n3\n"x"y,4\n5,6,7\n');
    const out = fileWith(
      dir,
      'odd.jsonl',
      ['row-1', 'row-2', 'row-3', 'row-4'].map((id) => answerLine({ custom_id: id, content: id })).join('\n'),
    );
    for (const relaxColumnCount of [false, true]) {
      const { bytes, rows } = await bothPaths({ source, results: [out], relaxColumnCount });
      expect(read(bytes.out)).toEqual(read(rows.out));
      expect(read(bytes.out).map((r) => [r.a, r.b, r.status])).toEqual(
        relaxColumnCount
          ? [
              ['1', '2', 'ok'],
              ['3', '', 'ok'],
              ['', '', 'rejected'],
              ['5', '6', 'ok'],
            ]
          : [
              ['1', '2', 'ok'],
              ['', '', 'rejected'],
              ['', '', 'rejected'],
              ['', '', 'rejected'],
            ],
      );
    }
  });

  it('writes JSON Lines rows that do not read, empty objects and the rest in place, into JSON Lines and CSV', async () => {
    const lines = [
      '{"a":1}',
      '{"a": broken',
      '{}',
      '  { }  ',
      '[1,2]',
      '{"a":"é \\u00e9","b":{"c":[1]}}',
      '{"a":3}',
    ];
    const source = fileWith(dir, 'unread.jsonl', lines.join('\n'));
    const results = fileWith(
      dir,
      'unread-out.jsonl',
      lines.map((_, i) => answerLine({ custom_id: `row-${i + 1}`, content: `c${i + 1}` })).join('\n'),
    );
    const asJsonl = await joinTable({ source, results: [results], out: join(dir, 'unread.jsonl.out.jsonl') });
    const written = readFileSync(asJsonl.out, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    // Each row as JSON.parse reads its line, with its result after; a line that is not an object is rejected, its columns empty.
    expect(written.map(({ a, b, status, content }) => ({ a, b, status, content }))).toEqual([
      { a: 1, b: undefined, status: 'ok', content: 'c1' },
      { a: '', b: '', status: 'rejected', content: null },
      { a: undefined, b: undefined, status: 'ok', content: 'c3' },
      { a: undefined, b: undefined, status: 'ok', content: 'c4' },
      { a: '', b: '', status: 'rejected', content: null },
      { a: 'é é', b: { c: [1] }, status: 'ok', content: 'c6' },
      { a: 3, b: undefined, status: 'ok', content: 'c7' },
    ]);
    expect(asJsonl.statuses.rejected).toBe(2);
    const asCsv = await joinTable({ source, results: [results], out: join(dir, 'unread.csv') });
    expect(read(asCsv.out).map((r) => [r.a, r.b, r.status])).toEqual([
      ['1', '', 'ok'],
      ['', '', 'rejected'],
      ['', '', 'ok'],
      ['', '', 'ok'],
      ['', '', 'rejected'],
      ['é é', '{"c":[1]}', 'ok'],
      ['3', '', 'ok'],
    ]);
  });

  it('writes TSV from TSV, and CSV into TSV or JSONL', async () => {
    const tsv = fileWith(dir, 't.tsv', 'a\tb\nx,1\t"y\tz"\n');
    const out = fileWith(dir, 't.jsonl', answerLine({ custom_id: 'row-1', content: 'tab\there' }));
    const { bytes, rows } = await bothPaths({ source: tsv, results: [out] }, 'tsv');
    expect(read(bytes.out, '\t')).toEqual(read(rows.out, '\t'));
    expect(read(bytes.out, '\t')[0]).toMatchObject({ a: 'x,1', b: 'y\tz', content: 'tab\there' });
    const csv = fileWith(dir, 'c.csv', 'a\nx\n');
    const asTsv = await joinTable({ source: csv, results: [out], out: join(dir, 'c.tsv') });
    expect(read(asTsv.out, '\t')).toEqual([expect.objectContaining({ a: 'x', content: 'tab\there' })]);
    const jsonl = await joinTable({ source: csv, results: [out], out: join(dir, 'c.jsonl') });
    expect(JSON.parse(readFileSync(jsonl.out, 'utf8'))).toMatchObject({
      a: 'x',
      status: 'ok',
      prompt_tokens: 20,
    });
  });

  it('JSONL sources with uneven keys no longer lose columns: join --out h.csv has every column', async () => {
    const source = fileWith(dir, 'h.jsonl', '{"a":1}\n{"a":2,"b":"extra"}\n');
    const results = fileWith(
      dir,
      'h-out.jsonl',
      [
        answerLine({ custom_id: 'row-1', content: 'x' }),
        answerLine({ custom_id: 'row-2', content: 'y' }),
      ].join('\n'),
    );
    const result = await joinTable({ source, results: [results], out: join(dir, 'h.csv') });
    expect(read(result.out).map((r) => [r.a, r.b, r.status, r.content])).toEqual([
      ['1', '', 'ok', 'x'],
      ['2', 'extra', 'ok', 'y'],
    ]);
  });

  it('names the vector column from the endpoint, whatever came back', async () => {
    const source = fileWith(dir, 'emb.csv', 'text\na\nb\n');
    const none = fileWith(
      dir,
      'emb-none.jsonl',
      [errorLine('row-1', 'http'), errorLine('row-2', 'http')].join('\n'),
    );
    const some = fileWith(
      dir,
      'emb-some.jsonl',
      [embeddingLine('row-1', [0.25, 1]), errorLine('row-2', 'http')].join('\n'),
    );
    for (const results of [none, some]) {
      const { bytes, rows } = await bothPaths({ source, results: [results], endpoint: '/v1/embeddings' });
      expect(bytes.columns).toEqual(rows.columns);
      expect(bytes.columns[1]).toBe('embedding');
      expect(read(bytes.out)).toEqual(read(rows.out));
      expect(Object.keys(read(bytes.out)[0]!)).toEqual(['text', ...bytes.columns]);
      const chat = await bothPaths({ source, results: [results] });
      expect([chat.bytes.columns[1], chat.rows.columns[1]]).toEqual(['content', 'content']);
    }
    const { bytes } = await bothPaths({ source, results: [some], endpoint: '/v1/embeddings' });
    expect(read(bytes.out).map((r) => r.embedding)).toEqual(['[0.25,1]', '']);
  });

  it('parses big result files on worker threads, with the same table, problem lines and re-asks as one thread', async () => {
    const count = 45_000; // about 18 MB of output lines: over the threshold for threads
    const source = fileWith(
      dir,
      'big.csv',
      `text\n${Array.from({ length: count }, (_, i) => `t${i}`).join('\n')}\n`,
    );
    const lines: string[] = [];
    const requests: string[] = [];
    for (let i = count; i >= 1; i--) {
      requests.push(requestLine(`row-${i}`, `t${i - 1}`));
      if (i % 5000 === 0) lines.push(`{"custom_id": "row-${i}", broken`);
      else
        lines.push(
          answerLine({
            custom_id: `row-${i}`,
            // Every 7th answer is not one of the labels: invalid_output, re-asked.
            content: `{"label": "${i % 7 === 0 ? 'maybe' : i % 2 ? 'positive' : 'negative'}"}`,
            n: i,
          }),
        );
    }
    const out = fileWith(dir, 'big.jsonl', `${lines.join('\n')}\n`);
    const requestFile = fileWith(dir, 'big-requests.jsonl', `${requests.join('\n')}\n`);
    const labels = ['positive', 'negative'];
    const reask = (name: string) => ({ requests: [requestFile], out: join(dir, name) });
    const threaded = await joinTable({
      source,
      results: [out],
      labels,
      reask: reask('big-threads-reask.jsonl'),
      out: join(dir, 'big-threads.csv'),
    });
    // A zod schema cannot go to a thread: the same labels as a zod enum run on this thread.
    const schema = z.object({ label: z.enum(['positive', 'negative']) });
    const single = await joinTable({
      source,
      results: [out],
      schema,
      reask: reask('big-one-reask.jsonl'),
      out: join(dir, 'big-one.csv'),
    });
    expect(readFileSync(threaded.out, 'utf8')).toBe(readFileSync(single.out, 'utf8'));
    const invalid = Math.floor(count / 7) - Math.floor(count / 35_000);
    expect(threaded.statuses).toMatchObject({ ok: count - 9 - invalid, invalid_output: invalid, failed: 9 });
    expect(threaded.reasked).toBe(invalid);
    expect(single.reasked).toBe(invalid);
    const reasked = readFileSync(join(dir, 'big-threads-reask.jsonl'), 'utf8');
    expect(reasked).toBe(readFileSync(join(dir, 'big-one-reask.jsonl'), 'utf8'));
    expect(JSON.parse(reasked.split('\n')[0]!).body.messages[1]).toEqual({
      role: 'assistant',
      content: '{"label": "maybe"}',
    });
    const where = (r: typeof threaded) =>
      r.problemDetails.first.map((p) => `${p.context.file}:${p.context.line}`).sort();
    expect(where(threaded)).toEqual(where(single));
    expect(where(threaded)).toContain(`${out}:${count - 5000 + 1}`);
    expect(threaded.problems).toBe(9);
  });

  it('joins over 16 MiB of results on more than one thread: each row its own best answer, in order, as a plain reference says', async () => {
    // About 30 MB of spilled results: over the 16 MiB a join thread needs, so on two cores step 3
    // shares its partitions between this thread and a worker.
    const count = 60_000;
    const ids = Array.from({ length: count }, (_, i) => `k${(i * 7919) % count}`);
    const source = fileWith(
      dir,
      'wide.csv',
      `id,text\n${ids.map((id, i) => `${id},"row ${i}, ""quoted"""`).join('\n')}\n`,
    );
    const answer = (id: string, draw: number) => `${id} answer ${draw} ${'é€😀 text, "quoted" '.repeat(20)}`;
    const lines: string[] = [];
    const expected = new Map<string, { status: string; content: string }>();
    for (let i = count - 1; i >= 0; i--) {
      const id = ids[i]!;
      if (i % 11 === 0) continue; // missing
      if (i % 13 === 0) {
        // Failed first, answered later: the answer wins.
        lines.push(errorLine(id, 'http'));
        lines.push(answerLine({ custom_id: id, content: answer(id, 2), n: i }));
        expected.set(id, { status: 'ok', content: answer(id, 2) });
      } else if (i % 17 === 0) {
        lines.push(errorLine(id, 'http'));
        expected.set(id, { status: 'failed', content: '' });
      } else {
        lines.push(answerLine({ custom_id: id, content: answer(id, 1), n: i }));
        expected.set(id, { status: 'ok', content: answer(id, 1) });
      }
    }
    // Answers for ids no row has: orphans, left out of the table.
    for (let i = 0; i < 50; i++) lines.push(answerLine({ custom_id: `orphan-${i}`, content: 'x' }));
    const results = fileWith(dir, 'wide.jsonl', `${lines.join('\n')}\n`);
    expect(readFileSync(results).length).toBeGreaterThan(2 * 16 * 2 ** 20);
    const joined = await joinTable({
      source,
      results: [results],
      idColumn: 'id',
      out: join(dir, 'wide-out.csv'),
    });
    const rows = read(joined.out);
    // The reference: csv-parse's source rows in order, each with the best result for its id.
    const reference = read(source).map((r) => ({
      ...r,
      ...(expected.get(r.id!) ?? { status: 'missing', content: '' }),
    }));
    expect(rows.length).toBe(count);
    expect(rows.map((r) => ({ id: r.id, text: r.text, status: r.status, content: r.content }))).toEqual(
      reference,
    );
    expect(joined.statuses.ok + joined.statuses.failed + joined.statuses.missing).toBe(count);
  });

  it('re-asks invalid answers, the same requests whether rows go out as bytes or as Row objects', async () => {
    const source = fileWith(dir, 're.csv', 'id,text\na,good\nb,bad\nc,"so, so"\nd,gone\n');
    const requestFile = fileWith(
      dir,
      're-requests.jsonl',
      ['a', 'b', 'c', 'd'].map((id) => requestLine(id, id)).join('\n'),
    );
    const results = fileWith(
      dir,
      're-out.jsonl',
      [
        answerLine({ custom_id: 'a', content: '{"label": "positive"}' }),
        answerLine({ custom_id: 'b', content: 'dunno' }),
        answerLine({ custom_id: 'c', content: '{"label": "meh"}' }),
        // d: invalid first, then a valid re-asked answer: the valid one wins, nothing to re-ask.
        answerLine({ custom_id: 'd', content: 'hmm' }),
        answerLine({ custom_id: 'd', content: 'Negative' }),
      ].join('\n'),
    );
    const n = ++runs;
    const options = { source, results: [results], idColumn: 'id', labels: ['positive', 'negative'] };
    const { bytes, rows } = await bothPaths({
      ...options,
      reask: { requests: [requestFile], out: join(dir, `reask-${n}.jsonl`) },
    });
    expect(read(bytes.out)).toEqual(read(rows.out));
    expect([bytes.reasked, rows.reasked]).toEqual([2, 2]);
    const reasked = readFileSync(join(dir, `reask-${n}.jsonl`), 'utf8');
    expect(reasked).toBe(readFileSync(join(dir, `reask-${n}.jsonl.rows`), 'utf8'));
    expect(
      reasked
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).custom_id)
        .sort(),
    ).toEqual(['b', 'c']);
  });
});

/** A chat request line as prepare writes it. */
function requestLine(id: string, content: string): string {
  return JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'qwen-plus', messages: [{ role: 'user', content }] },
  });
}

describe('joinTable: custom_ids derived under either rule', () => {
  // ref/modelstudio-batch-file-input.txt: "The custom_id supports a maximum of 256 characters." Earlier
  // releases counted UTF-8 bytes and derived sha256-<hex> for a key of 86-256 CJK characters; such keys
  // are now kept verbatim. Result files made under either rule join to their rows.
  it('joins a result with the byte-rule id and one with the verbatim id to their rows', async () => {
    const a = '键'.repeat(100); // 100 characters, 300 UTF-8 bytes
    const b = '値'.repeat(200);
    const sha = (text: string) => `sha256-${createHash('sha256').update(text).digest('hex')}`;
    const source = fileWith(dir, 'either-rule.csv', `id,text\n${a},one\n${b},two\nshort,three\n`);
    const results = fileWith(
      dir,
      'either-rule.jsonl',
      [
        answerLine({ custom_id: sha(a), content: 'old rule' }),
        answerLine({ custom_id: b, content: 'new rule' }),
        answerLine({ custom_id: 'short', content: 'plain' }),
      ].join('\n'),
    );
    const { bytes, rows } = await bothPaths({ source, results: [results], idColumn: 'id' });
    for (const out of [bytes.out, rows.out]) {
      expect(read(out).map((r) => [r.id, r.status, r.content])).toEqual([
        [a, 'ok', 'old rule'],
        [b, 'ok', 'new rule'],
        ['short', 'ok', 'plain'],
      ]);
    }
    expect([bytes.orphans, rows.orphans]).toEqual([0, 0]);
  });
});
