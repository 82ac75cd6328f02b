/**
 * join: 1M rows of product reviews (200-800 characters with quotes, commas, newlines, emoji and
 * accents; 638 MB) joined with their results (427 MB of output lines in shuffled order, 1% of the
 * requests in an error file), whole process, compared in the same run on the same files with:
 *   - python          the provider documentation's JSONL-to-CSV script extended with a dict join
 *                     (bench/peers/join_results.py; its get() is fixed to index lists by position:
 *                     as documented, `0 in list` tests membership, so choices[0] was never found and
 *                     it did less work than the others)
 *   - duckdb          DuckDB: read_csv + read_json, LEFT JOIN by custom_id, ORDER BY the source row,
 *                     COPY to CSV (bench/peers/duckdb-join.mjs). Its parallel CSV reader refuses
 *                     this file (newlines inside quoted fields), so it reads the CSV on one thread.
 *   - batchpipe       `batchpipe join` as users run it (the byte engine: CSV rows copied as bytes,
 *                     results parsed on worker threads while the source's ids are read)
 *   - batchpipe rows  the general path (resultSource -> joinResults -> csvSink, Row objects), up to 200k
 * Each variant runs in its own process and reports its peak RSS; all write the same result columns
 * (status, content, error_code, error_message, prompt_tokens, completion_tokens). The bench checks
 * every variant wrote every row, and at the smallest size that they agree on every result column.
 *
 * Run: npm run build && node --import tsx bench/join.bench.ts [--sizes 100000,1000000] [--repeat 3]
 *
 * Figures (2 x AMD EPYC, Node v20.20.2, 2026-12-01; a shared machine, so spreads are wide at times),
 * median of 3, bench/results/join.json:
 *   rows       variant          seconds   rows/s   vs python   peak RSS
 *   100,000    python              2.51   39,821       1.00x      41 MB
 *              duckdb              2.42   41,246       1.04x     438 MB
 *              batchpipe           1.96   50,960       1.28x     137 MB
 *              batchpipe rows      2.40   41,655       1.05x     116 MB
 *   1,000,000  python             28.31   35,318       1.00x     280 MB
 *              duckdb             16.26   61,509       1.74x   3,044 MB
 *              batchpipe           9.22  108,486       3.07x     162 MB   (1.76x duckdb)
 *
 *   Another run the same day: 89,370 rows/s at 1M (2.25x python, 1.41x duckdb), 134 -> 164 MB. Peak
 *   RSS from 100k to 1M is 1.18-1.22x across runs. The JS heaps are flat (the main thread's 21 -> 23
 *   MB committed, each result thread's 12 -> 13 MB); what grows is the two result threads' native
 *   memory while they parse: on one thread the same join peaks at 90 -> 99 MB (1.1x), 1.4x slower.
 *   DuckDB's parallel CSV reader refuses this table at 1M rows ("does not support a full read on this
 *   file": quoted newlines), so it reads it on one thread.
 *
 * Reading: every peer decodes the whole table into strings and encodes it again on the way out; the
 * byte engine never decodes the source text (it reads only the id column, copies each row's bytes
 * and appends the result columns), so what is left is parsing 427 MB of JSON, which it spreads over
 * both cores while the first pass over the table runs. Memory is a block per hash partition and one
 * partition's results, so it stays flat from 100k to 1M rows, where the dict join and DuckDB's hash
 * join grow with the input. The general Row path is slower than the script: it reads the table twice
 * into strings (the first pass only for the ids) and csv-stringify encodes every field; it is the
 * path for JSONL and for pipelines built by hand, and the one the byte engine is held equal to.
 */
import { createWriteStream, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { csvSource } from '../src/sources/csv-source.js';
import { writeReviewsCsv } from '../test/fixtures/make-fixtures.js';
import { answerLine, errorLine, seeded, shuffle } from '../test/support/results.js';
import {
  ARGS,
  BENCH_DIR,
  CLI,
  dataFile,
  existsSync,
  fmt,
  type Measured,
  machine,
  measure,
  runOnce,
  SIZES,
  saveResults,
  table,
} from './lib.js';

const args = ARGS;
const sizes = SIZES;
const repeat = Number(args.get('repeat') ?? 3);

const LABELS = ['positive', 'negative', 'neutral'];
const ERROR_SHARE = 0.01;
const out = (name: string) => dataFile(`join-out-${name}.csv`);

/** Output and error files for `size` rows with ids r1..rN: shuffled, 1% failed. Seeded. */
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
    const id = `r${i}`;
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

/** The result columns of a joined CSV, in row order, as one string per row (read with batchpipe's scanner). */
async function resultColumns(path: string): Promise<string[]> {
  const rows: string[] = [];
  const wanted = [
    'id',
    'status',
    'content',
    'error_code',
    'error_message',
    'prompt_tokens',
    'completion_tokens',
  ];
  for await (const item of csvSource(path)) {
    const values = (item as { values: Record<string, unknown> }).values;
    rows.push(wanted.map((c) => String(values[c] ?? '')).join('\u0001'));
  }
  return rows;
}

const results: Measured[] = [];
for (const size of sizes) {
  const source = dataFile(`reviews-${size}.csv`);
  const output = dataFile(`join-output-${size}.jsonl`);
  const errors = dataFile(`join-errors-${size}.jsonl`);
  if (!existsSync(source)) {
    process.stderr.write(`generating ${source}...\n`);
    await writeReviewsCsv(source, size, 42);
  }
  if (!existsSync(output) || !existsSync(errors)) {
    process.stderr.write(`generating ${output}...\n`);
    await writeResults(output, errors, size);
  }
  process.stderr.write(`join, ${fmt(size)} rows, ${machine()}\n`);
  const counted: Record<string, number | undefined> = {};
  const peerArgs = (name: string) => [source, 'id', out(name), output, errors];

  results.push(
    await measure('python', size, repeat, async () => {
      const sample = await runOnce('python3', [
        join(BENCH_DIR, 'peers', 'join_results.py'),
        ...peerArgs('python'),
      ]);
      counted.python = sample.rows;
      return sample;
    }),
  );
  results.push(
    await measure('duckdb', size, repeat, async () => {
      const sample = await runOnce(process.execPath, [
        join(BENCH_DIR, 'peers', 'duckdb-join.mjs'),
        ...peerArgs('duckdb'),
      ]);
      counted.duckdb = sample.rows;
      return sample;
    }),
  );
  results.push(
    await measure('batchpipe', size, repeat, async () => {
      const summary = out('batchpipe').replace(/\.csv$/, '.summary.json');
      const sample = await runOnce('sh', [
        '-c',
        // The CLI's --json summary goes to a file; rusage.py reports the peak RSS on stderr.
        `python3 ${JSON.stringify(join(BENCH_DIR, 'peers', 'rusage.py'))} ${JSON.stringify(CLI)} join --source ${JSON.stringify(source)} --id-column id --results ${JSON.stringify(output)} --errors ${JSON.stringify(errors)} --out ${JSON.stringify(out('batchpipe'))} --json > ${JSON.stringify(summary)}`,
      ]);
      counted.batchpipe = (JSON.parse(readFileSync(summary, 'utf8')) as { rows: number }).rows;
      return sample;
    }),
  );
  if (size <= 200_000) {
    results.push(
      await measure('batchpipe rows', size, repeat, async () => {
        const sample = await runOnce(process.execPath, [
          join(BENCH_DIR, 'peers', 'join-rows-engine.mjs'),
          ...peerArgs('rows'),
        ]);
        counted.rows = sample.rows;
        return sample;
      }),
    );
  }

  for (const [name, n] of Object.entries(counted)) {
    if (n !== size)
      throw new Error(`${name} wrote ${n} rows for ${size}: the variants did not do the same work`);
  }
  if (size === Math.min(...sizes)) {
    const reference = await resultColumns(out('python'));
    for (const name of Object.keys(counted).filter((n) => n !== 'python')) {
      const theirs = await resultColumns(out(name));
      const differ = theirs.findIndex((row, i) => row !== reference[i]);
      if (theirs.length !== reference.length || differ !== -1)
        throw new Error(
          `${name} and python disagree at row ${differ + 1}: ${theirs[differ]} vs ${reference[differ]}`,
        );
    }
    process.stderr.write(`  every variant wrote the same result columns for all ${fmt(size)} rows\n`);
  }
  for (const name of Object.keys(counted)) rmSync(out(name), { force: true });
}

const report = table(results, 'python');
console.log(`\njoin (${machine()})\n\n${report}\n`);
const at = (name: string, size: number) => results.find((r) => r.name === name && r.size === size);
const big = Math.max(...sizes);
const small = Math.min(...sizes);
const ours = at('batchpipe', big)!;
const ratio = (peer: string) => ours.rowsPerSecond / at(peer, big)!.rowsPerSecond;
console.log(
  `at ${fmt(big)} rows: ${ratio('python').toFixed(2)}x python, ${ratio('duckdb').toFixed(2)}x duckdb`,
);
const checks = [
  [`throughput >= 2x python at ${fmt(big)}`, ratio('python') >= 2],
  [`throughput >= 0.5x duckdb at ${fmt(big)}`, ratio('duckdb') >= 0.5],
  [`peak RSS < 250 MB at ${fmt(big)}`, (ours.maxRssMb ?? Infinity) < 250],
  [
    `peak RSS at ${fmt(big)} <= 1.2x peak at ${fmt(small)}`,
    (ours.maxRssMb ?? Infinity) <= 1.2 * (at('batchpipe', small)!.maxRssMb ?? 0),
  ],
] as const;
for (const [what, ok] of checks) console.log(`${ok ? 'PASS' : 'MISS'}  ${what}`);
console.log(`\nresults: ${saveResults('join', { machine: machine(), results })}`);
