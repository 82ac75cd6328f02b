import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { csvSource } from '../../src/sources/csv-source.js';
import type { Row, SourceItem } from '../../src/types.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';
import { runCli, withoutEngineNotice } from './run-cli.js';

const dir = tempDir('bp-column-names-');
/** No provider in the environment: commands use the embedded local service. */
const env = {
  BATCHPIPE_PROVIDER: '',
  BATCHPIPE_BASE_URL: '',
  BATCHPIPE_API_KEY: '',
  DASHSCOPE_API_KEY: '',
  OPENAI_API_KEY: '',
};

/** Columns named like Object.prototype's members, and one with a space and a quote. */
const HEADER = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'say "col"'];
const ROWS = [
  ['p1', 'id-1', 't1', 'h1', 'q1'],
  ['p2', 'id-2', 't2', 'h2', 'q2'],
  ['p3', 'id-3', 't3', 'h3', 'q3'],
];
const TEMPLATE = '{{__proto__}}/{{toString}}/{{hasOwnProperty}}/{{"say \\"col\\""}}';

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const contentOf = (request: Record<string, unknown>) =>
  (request.body as { messages: Array<{ content: string }> }).messages[0]!.content;
/** A parsed CSV table as [key, value] pairs per row (csv-parse keeps __proto__ as an own key). */
const csvPairs = (file: string) =>
  (parse(readFileSync(file, 'utf8'), { columns: true }) as Record<string, string>[]).map((r) =>
    Object.entries(r),
  );

describe('column names are data (Object.prototype names, spaces, quotes)', () => {
  const input = fileWith(dir, 'odd.csv', csvText(HEADER, ROWS));

  it('prepare: the template and --id-column read them, as a template and as a mapper module', async () => {
    const out = join(dir, 'prep');
    const result = await runCli(
      [
        'prepare',
        input,
        '--template',
        TEMPLATE,
        '--model',
        'qwen-plus',
        '--id-column',
        'constructor',
        '--out',
        out,
      ],
      { env },
    );
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    const requests = lines(join(out, 'requests-00001.jsonl'));
    expect(requests.map((r) => [r.custom_id, contentOf(r)])).toEqual([
      ['id-1', 'p1/t1/h1/q1'],
      ['id-2', 'p2/t2/h2/q2'],
      ['id-3', 'p3/t3/h3/q3'],
    ]);

    const mapper = join(dir, 'odd-mapper.mjs');
    writeFileSync(
      mapper,
      `export default (values) => {
  if (!Object.hasOwn(values, '__proto__') || Object.getPrototypeOf(values) !== Object.prototype) throw new Error('no own __proto__');
  return { model: 'qwen-plus', messages: [{ role: 'user', content: [values.__proto__, values.constructor, values.toString, values['say "col"']].join('/') }] };
};
`,
    );
    const mapped = join(dir, 'mapped');
    const viaMapper = await runCli(
      ['prepare', input, '--mapper', mapper, '--id-column', 'toString', '--out', mapped],
      {
        env,
      },
    );
    expect(viaMapper.stderr).not.toContain('error');
    expect(viaMapper.code).toBe(0);
    expect(lines(join(mapped, 'requests-00001.jsonl')).map((r) => [r.custom_id, contentOf(r)])).toEqual([
      ['t1', 'p1/id-1/t1/q1'],
      ['t2', 'p2/id-2/t2/q2'],
      ['t3', 'p3/id-3/t3/q3'],
    ]);
  });

  it('a mapper module on worker threads (past the first 16,384 rows) gets them as own keys too', async () => {
    const many = Array.from({ length: 20_000 }, (_, i) => [`p${i}`, `id-${i}`, `t${i}`, `h${i}`, `q${i}`]);
    const big = fileWith(dir, 'odd-big.csv', csvText(HEADER, many));
    const mapped = join(dir, 'mapped-big');
    const result = await runCli(
      ['prepare', big, '--mapper', join(dir, 'odd-mapper.mjs'), '--id-column', '__proto__', '--out', mapped],
      { env },
    );
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    const requests = lines(join(mapped, 'requests-00001.jsonl'));
    expect(requests).toHaveLength(20_000);
    expect(requests.map((r) => [r.custom_id, contentOf(r)])).toEqual(
      many.map((r) => [r[0], [r[0], r[1], r[2], r[4]].join('/')]),
    );
  });

  it('a template renders them from JSON Lines rows, on the render threads too', async () => {
    const count = 20_000;
    const text = Array.from(
      { length: count },
      (_, i) => `{"__proto__":"p${i}","constructor":"c${i}","toString":${i % 2 ? `"t${i}"` : '{"x":1}'}}`,
    ).join('\n');
    // The last row lacks toString: it is rejected, not rendered from Object.prototype.toString.
    const table = fileWith(dir, 'odd.jsonl', `${text}\n{"__proto__":"p","constructor":"last"}\n`);
    const out = join(dir, 'jsonl-prep');
    const result = await runCli(
      [
        'prepare',
        table,
        '--template',
        TEMPLATE.split('/').slice(0, 2).join('/'),
        '--system',
        '{{constructor}}',
        '--model',
        'qwen-plus',
        '--id-column',
        'constructor',
        '--out',
        out,
      ],
      { env },
    );
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    const requests = lines(join(out, 'requests-00001.jsonl'));
    expect(requests).toHaveLength(count);
    const messages = (r: Record<string, unknown>) =>
      (r.body as { messages: Array<{ content: string }> }).messages;
    expect(requests.map((r) => [r.custom_id, messages(r)[0]!.content, messages(r)[1]!.content])).toEqual(
      Array.from({ length: count }, (_, i) => [`c${i}`, `c${i}`, `p${i}/${i % 2 ? `t${i}` : '{"x":1}'}`]),
    );
    expect(lines(join(out, 'rejections.jsonl'))).toMatchObject([
      { custom_id: 'last', code: 'BP_TEMPLATE_MISSING_COLUMN', line: count + 1 },
    ]);
  });

  it('run and join keep every such column in CSV and JSONL output', async () => {
    const runDir = join(dir, 'runs');
    const csvOut = join(dir, 'out.csv');
    const args = [
      '--template',
      TEMPLATE,
      '--model',
      'qwen-plus',
      '--id-column',
      'constructor',
      '--runs-dir',
      runDir,
    ];
    const run = await runCli(['run', input, ...args, '--out', csvOut], { cwd: dir, env });
    expect(run.code).toBe(0);
    const table = csvPairs(csvOut);
    expect(table.map((r) => r.slice(0, HEADER.length))).toEqual(
      ROWS.map((r) => r.map((v, c) => [HEADER[c], v])),
    );
    expect(table.map((r) => Object.fromEntries(r.slice(HEADER.length)).status)).toEqual(['ok', 'ok', 'ok']);

    const jsonlOut = join(dir, 'out.jsonl');
    const again = await runCli(['run', input, ...args, '--out', jsonlOut], { cwd: dir, env });
    expect(again.code).toBe(0);
    const joined = lines(jsonlOut);
    for (const [i, row] of joined.entries()) {
      expect(Object.keys(row).slice(0, HEADER.length)).toEqual(HEADER);
      expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
      expect(HEADER.map((name) => Object.getOwnPropertyDescriptor(row, name)?.value)).toEqual(ROWS[i]);
      expect(row.status).toBe('ok');
    }

    // The same rows as JSON Lines input, joined onto the run's results by hand.
    const jsonlInput = fileWith(
      dir,
      'odd.jsonl',
      `${ROWS.map((r) => `{${r.map((v, c) => `${JSON.stringify(HEADER[c])}:${JSON.stringify(v)}`).join(',')}}`).join('\n')}\n`,
    );
    const joinedOut = join(dir, 'joined.csv');
    const byHand = await runCli(
      [
        'join',
        '--source',
        jsonlInput,
        '--results',
        csvOut.replace(/out\.csv$/, 'runs'),
        '--id-column',
        'constructor',
        '--out',
        joinedOut,
      ],
      { cwd: dir, env },
    );
    expect(byHand.stderr).not.toContain('error');
    expect(csvPairs(joinedOut).map((r) => r.slice(0, HEADER.length))).toEqual(
      ROWS.map((r) => r.map((v, c) => [HEADER[c], v])),
    );
  });

  it("a user's Transform gets rows whose values hold those names as own keys", async () => {
    const seen: Array<[string, unknown][]> = [];
    await pipeline(
      csvSource(input),
      new Transform({
        objectMode: true,
        transform(item: SourceItem, _encoding, done) {
          const values = (item as Row).values;
          expect(Object.getPrototypeOf(values)).toBe(Object.prototype);
          seen.push(HEADER.map((name) => [name, Object.hasOwn(values, name) ? values[name] : 'MISSING']));
          done();
        },
      }),
    );
    expect(seen).toEqual(ROWS.map((r) => r.map((v, c) => [HEADER[c], v])));
  });

  it('an empty or repeated header name stops prepare, run and join with BP_INPUT_HEADER, unless --columns names them', async () => {
    const dup = fileWith(dir, 'dup.tsv', 'id\ttext\tid\n1\ta\t2\n');
    const message = `error BP_INPUT_HEADER: ${dup}:1: column 3 of the header, "id", repeats column 1; name the columns with --columns`;
    const prepare = await runCli(
      ['prepare', dup, '--template', '{{text}}', '--model', 'qwen-plus', '--out', join(dir, 'dup-prep')],
      {
        env,
      },
    );
    expect([prepare.code, prepare.stderr.trim()]).toEqual([1, message]);
    const run = await runCli(
      ['run', dup, '--template', '{{text}}', '--model', 'qwen-plus', '--out', join(dir, 'dup.csv')],
      {
        cwd: dir,
        env,
      },
    );
    expect([run.code, withoutEngineNotice(run.stderr).trim()]).toEqual([1, message]);
    const results = fileWith(dir, 'dup-results.jsonl', '');
    const joined = await runCli(
      ['join', '--source', dup, '--results', results, '--out', join(dir, 'dup-joined.csv')],
      {
        cwd: dir,
        env,
      },
    );
    expect(joined.code).toBe(1);
    expect(joined.stderr).toContain(message);
    const named = await runCli(
      [
        'prepare',
        dup,
        '--columns',
        'id,text,id2',
        '--template',
        '{{text}} {{id2}}',
        '--model',
        'qwen-plus',
        '--out',
        join(dir, 'named'),
      ],
      { env },
    );
    expect(named.code).toBe(0);
    expect(lines(join(dir, 'named', 'requests-00001.jsonl')).map(contentOf)).toEqual(['a 2']);
  });
});
