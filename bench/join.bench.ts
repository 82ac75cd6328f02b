/**
 * join: the review table of the prepare bench (id, title, review, rating, created_at) joined with its
 * results (an answer per row in shuffled order, 1% of the requests in an error file; custom_id
 * row-<id>), whole processes, compared in one run on the same files:
 *   - python           the provider documentation's JSONL-to-CSV script with the dict join a user writes
 *                      (bench/peers/join.py; its get() fixed to index lists by position: as documented,
 *                      `0 in list` tests membership, so choices[0] was never found)
 *   - duckdb           read_json + read_csv (its default reader, default threads), LEFT JOIN by
 *                      custom_id, source order, COPY to CSV with batchpipe's columns and values
 *                      (bench/peers/join_duckdb.sql); if the reader refuses the file, the bench fails
 *   - cli              `batchpipe join` as users run it
 *   - composed         the README's composition: resultSource -> joinResults -> csvSink
 *                      (bench/peers/compose-join.mjs)
 *   - composed + Transform   a user's own object-mode Transform between joinResults and the sink (one
 *                      Row object at a time, as any Transform sees them)
 *   - cli jsonl, composed jsonl   the same table as JSON Lines in, JSON Lines out
 *   - duckdb parquet, cli parquet   the table as DuckDB writes it to zstd Parquet, joined into Parquet
 *                      (bench/peers/join_parquet_duckdb.sql; `batchpipe join --out x.parquet`)
 * All write the same result columns (status, content, error_code, error_message, prompt_tokens,
 * completion_tokens): the bench checks every variant wrote every row and, at the smallest size, the
 * same values in every result column.
 *
 * Run: npm run build && node --import tsx bench/join.bench.ts [--sizes 100000,1000000] [--repeat 5]
 *      [--variants cli,duckdb] (only those; checks on others left out, bench/results not written)
 * Median of `repeat` runs, the variants interleaved round by round after one untimed round of each
 * (`--warmup`); spread is (max - min) / median.
 *
 * Figures: bench/results/join.json and the closing table this prints (machine, Node and date in it).
 *
 * Reading: every peer decodes the whole table into strings and encodes it again on the way out.
 * batchpipe's join hands its result files to worker threads, which read each line from its bytes
 * (decoding only the members a result column comes from) into partitions by row number (the ids are
 * row-<n>: each row's cells already as the CSV text that follows it); the source is read once: the
 * output pass copies each source row's bytes and appends the cells of its row number, loading each
 * range's results as it reaches them, so the table's text is never decoded, while a worker thread
 * reads and scans the source ahead of it (the other core). Memory is a block per partition and one
 * range's results, flat from 100k to 1M rows, where the dict join and DuckDB's hash join grow with
 * the input.
 */
import { createWriteStream, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeBenchTable } from '../test/fixtures/make-fixtures.js';
import { answerLine, errorLine, seeded, shuffle } from '../test/support/results.js';
import {
  ARGS,
  BENCH_DIR,
  type Check,
  CLI,
  dataFile,
  existsSync,
  fmt,
  interleaved,
  type Measured,
  machine,
  parquetTable,
  runOnce,
  type Sample,
  SIZES,
  TableFigures,
  type Variant,
} from './lib.js';

const repeat = Number(ARGS.get('repeat') ?? 5);
const LABELS = ['positive', 'negative', 'neutral'];
const ERROR_SHARE = 0.01;
const peer = (file: string) => join(BENCH_DIR, 'peers', file);
const out = (name: string, ext = 'csv') => dataFile(`join-out-${name.replaceAll(/[^a-z]+/g, '-')}.${ext}`);

/** Output and error files for `size` rows with ids row-1..row-N: shuffled, 1% failed. Seeded. */
async function writeResults(output: string, errors: string, size: number): Promise<void> {
  const random = seeded(7);
  const order = shuffle(
    Array.from({ length: size }, (_, i) => i + 1),
    random,
  );
  const files = [createWriteStream(output), createWriteStream(errors)];
  const buffers = ['', ''];
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    const id = `row-${i}`;
    const failed = random() < ERROR_SHARE;
    buffers[failed ? 1 : 0] += `${
      failed
        ? errorLine(id, 'http', k)
        : answerLine({
            custom_id: id,
            content: LABELS[i % 3]!,
            n: k,
            prompt_tokens: 100 + (i % 200),
            completion_tokens: 1,
          })
    }\n`;
    for (const f of [0, 1]) {
      if (buffers[f]!.length < 1 << 20) continue;
      const file = files[f]!;
      if (!file.write(buffers[f])) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
      buffers[f] = '';
    }
  }
  await Promise.all(
    files.map(
      (file, f) =>
        new Promise<void>((resolve, reject) =>
          file.end(buffers[f], (error?: Error | null) => (error ? reject(error) : resolve())),
        ),
    ),
  );
}

const RESULT_COLUMNS = [
  'status',
  'content',
  'error_code',
  'error_message',
  'prompt_tokens',
  'completion_tokens',
];

/** The id and result columns of a joined table, in row order, one string per row. */
async function resultColumns(path: string): Promise<string[]> {
  const { csvSource, jsonlSource, parquetSource } = await import('../dist/index.js');
  const rows: string[] = [];
  const source = path.endsWith('.jsonl')
    ? jsonlSource(path)
    : path.endsWith('.parquet')
      ? parquetSource(path)
      : csvSource(path);
  for await (const item of source) {
    const values = (item as { values: Record<string, unknown> }).values;
    rows.push(['id', ...RESULT_COLUMNS].map((c) => String(values[c] ?? '')).join('\u0001'));
  }
  return rows;
}

const all: Measured[] = [];
for (const size of SIZES) {
  const csv = dataFile(`bench-reviews-${size}.csv`);
  const jsonl = dataFile(`bench-reviews-${size}.jsonl`);
  const output = dataFile(`bench-results-${size}.jsonl`);
  const errors = dataFile(`bench-errors-${size}.jsonl`);
  for (const path of [csv, jsonl]) {
    if (existsSync(path)) continue;
    process.stderr.write(`generating ${path}...\n`);
    await writeBenchTable(path, size, 42);
  }
  if (!existsSync(output) || !existsSync(errors)) {
    process.stderr.write(`generating ${output}...\n`);
    await writeResults(output, errors, size);
  }
  const parquet = await parquetTable(csv);
  process.stderr.write(
    `join, ${fmt(size)} rows (${(statSync(csv).size / 1e6).toFixed(0)} MB CSV, ${(statSync(output).size / 1e6).toFixed(0)} MB of results), ${machine()}\n`,
  );
  const outputs: Record<string, string> = {};
  const counted: Record<string, number | undefined> = {};
  const variant = (name: string, path: string, run: () => Promise<Sample>): Variant => ({
    name,
    clean: () => rmSync(path, { force: true }),
    run: async () => {
      const sample = await run();
      outputs[name] = path;
      counted[name] = sample.rows;
      return sample;
    },
  });
  const cli = (name: string, source: string, path: string) =>
    variant(name, path, async () => {
      const summary = `${path}.summary.json`;
      const sample = await runOnce('sh', [
        '-c',
        // The CLI's --json summary goes to a file; rusage.py reports the peak RSS on stderr.
        `python3 ${JSON.stringify(peer('rusage.py'))} ${JSON.stringify(CLI)} join --source ${JSON.stringify(source)} --results ${JSON.stringify(output)} --errors ${JSON.stringify(errors)} --out ${JSON.stringify(path)} --json > ${JSON.stringify(summary)}`,
      ]);
      const rows = (JSON.parse(readFileSync(summary, 'utf8')) as { rows: number }).rows;
      rmSync(summary, { force: true });
      return { ...sample, rows };
    });
  const compose = (name: string, source: string, path: string, mode: string) =>
    variant(name, path, () =>
      runOnce(process.execPath, [peer('compose-join.mjs'), source, path, mode, output, errors]),
    );
  const variants: Variant[] = [
    variant('python', out('python'), () =>
      runOnce('python3', [peer('join.py'), csv, out('python'), output, errors]),
    ),
    variant('duckdb', out('duckdb'), () =>
      runOnce(process.execPath, [
        peer('duckdb.mjs'),
        peer('join_duckdb.sql'),
        csv,
        output,
        errors,
        out('duckdb'),
      ]).catch((error: Error) => {
        throw new Error(
          `DuckDB's default CSV reader (default threads) refused ${csv}; the bench does not fall back to one thread:\n${error.message}`,
        );
      }),
    ),
    cli('cli', csv, out('cli')),
    compose('composed', csv, out('composed'), 'plain'),
    compose('composed + Transform', csv, out('composed transform'), 'transform'),
    cli('cli jsonl', jsonl, out('cli jsonl', 'jsonl')),
    compose('composed jsonl', jsonl, out('composed jsonl', 'jsonl'), 'plain'),
    variant('duckdb parquet', out('duckdb parquet', 'parquet'), () =>
      runOnce(process.execPath, [
        peer('duckdb.mjs'),
        peer('join_parquet_duckdb.sql'),
        parquet,
        output,
        errors,
        out('duckdb parquet', 'parquet'),
      ]),
    ),
    cli('cli parquet', parquet, out('cli parquet', 'parquet')),
  ];
  // The outputs are compared at the smallest size only.
  all.push(...(await interleaved(size, repeat, variants, size === Math.min(...SIZES))));

  for (const [name, n] of Object.entries(counted)) {
    if (n !== size)
      throw new Error(`${name} wrote ${n} rows for ${size}: the variants did not do the same work`);
  }
  if (size === Math.min(...SIZES)) {
    // Python's is the reference; with --variants leaving it out, the first variant run.
    const [refName, refPath] = outputs.python ? ['python', outputs.python] : Object.entries(outputs)[0]!;
    const reference = await resultColumns(refPath);
    for (const [name, path] of Object.entries(outputs)) {
      const theirs = await resultColumns(path);
      const differ = theirs.findIndex((row, i) => row !== reference[i]);
      if (theirs.length !== reference.length || differ !== -1)
        throw new Error(
          `${name} and ${refName} disagree at row ${differ + 1}: ${theirs[differ]} vs ${reference[differ]}`,
        );
    }
    process.stderr.write(`  every variant wrote the same result columns for all ${fmt(size)} rows\n`);
  }
  for (const path of Object.values(outputs)) rmSync(path, { force: true });
}

const figures = new TableFigures('join', all, repeat);
const speed = (a: string, b: string) => figures.speed(a, b);
figures.finish([
  ...figures.sharedChecks([
    'cli',
    'composed',
    'composed + Transform',
    'cli jsonl',
    'composed jsonl',
    'cli parquet',
  ]),
  [
    `cli parquet >= 0.7x duckdb parquet rows/s (${speed('cli parquet', 'duckdb parquet').toFixed(2)}x)`,
    speed('cli parquet', 'duckdb parquet') >= 0.7,
  ],
  [
    `cli parquet <= 1/4 duckdb parquet peak RSS (${figures.memory('cli parquet', 'duckdb parquet').toFixed(2)})`,
    figures.memory('cli parquet', 'duckdb parquet') <= 0.25,
  ],
  ...['cli', 'composed'].flatMap((name): Check[] => [
    [`${name} >= 1.0x duckdb rows/s (${speed(name, 'duckdb').toFixed(2)}x)`, speed(name, 'duckdb') >= 1],
    [
      `${name} <= 1/6 duckdb peak RSS (${figures.memory(name, 'duckdb').toFixed(2)})`,
      figures.memory(name, 'duckdb') <= 1 / 6,
    ],
  ]),
]);
