/**
 * prepare: a table of product reviews (id, title, review, rating, created_at; reviews of 200-800
 * characters with quotes, commas, accents, CJK and emoji, about one in thirty with a line break) ->
 * Batch API request lines ("Title: <title>\nReview: <review>" under a fixed system prompt, custom_id
 * row-<id>), whole processes, compared in one run on the same files:
 *   - python           the provider documentation's CSV-to-JSONL script (bench/peers/prepare.py)
 *   - duckdb           DuckDB's COPY ... (FORMAT json), ../shared/peers' SQL, its default CSV reader at
 *                      its default thread count (bench/peers/prepare_duckdb.sql); if that reader refuses
 *                      the file, the bench fails and says so (it never falls back to one thread)
 *   - cli              `batchpipe prepare` as users run it
 *   - composed         the README's composition of the exported streams, the same job
 *                      (csvSource -> toRequests -> validateRequests -> shardRequests; peers/compose-prepare.mjs)
 *   - composed + Transform   a user's own object-mode Transform between source and toRequests (one Row
 *                      at a time, as any Transform sees them)
 *   - composed + mapRows     the same step with mapRows (the rows stay in the stages' batches)
 *   - cli --mapper     the requests built by a JS function per row (peers/mapper.mjs)
 *   - duckdb parquet, cli parquet   the same table as DuckDB writes it to zstd Parquet, read by DuckDB
 *                      (bench/peers/prepare_parquet_duckdb.sql) and by `batchpipe prepare`
 *   - cli jsonl, composed jsonl   the same table as JSON Lines
 * Every variant writes one request per row; the bench checks they all wrote the same rows and, at the
 * smallest size, the same requests (each line parsed; the mapper orders body keys its own way).
 *
 * Run: npm run build && node --import tsx bench/prepare.bench.ts [--sizes 100000,1000000] [--repeat 5]
 *      [--variants cli,duckdb] (only those; checks on others left out, bench/results not written)
 * Median of `repeat` runs, the variants interleaved round by round after one untimed round of each
 * (`--warmup`); spread is (max - min) / median.
 *
 * Figures: bench/results/prepare.json and the closing table this prints (machine, Node and date in it).
 *
 * Reading: every CSV library for Node hands out JS strings, and the decode, JSON.stringify and UTF-8
 * re-encode of each 600-character review cost several times the parse. batchpipe's stages pass each
 * other batches of rows over the bytes they were read from: toRequests copies each cell's bytes,
 * JSON-escaped, into the holes of a line template, and never makes a string of the text; past the
 * first rows a worker thread renders while the main thread reads, checks and writes, and the lines'
 * sha256 is computed on another. JSON Lines are checked by a byte scanner on two render threads, their
 * string cells copied as their bytes likewise. A mapper is user code per row: its values must be
 * decoded and its bodies serialized, so `--mapper` (a module) runs on a
 * thread per core. DuckDB parses into columns on both cores, then writes JSON; Python's csv and json
 * modules are C, but make objects per row. A user's Transform sees one Row object at a time, so its
 * variant pays for decoding every cell (and mapRows likewise). The composed variants run under plain
 * `node`, as a user's script does; the CLI under its own shebang flags.
 */
import { closeSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { writeBenchTable } from '../test/fixtures/make-fixtures.js';
import {
  ARGS,
  BENCH_DIR,
  type Check,
  dataFile,
  existsSync,
  fmt,
  interleaved,
  type Measured,
  machine,
  parquetTable,
  runCli,
  runOnce,
  type Sample,
  SIZES,
  TableFigures,
  type Variant,
} from './lib.js';

const repeat = Number(ARGS.get('repeat') ?? 5);
const MODEL = 'qwen-plus';
const SYSTEM =
  'Classify the sentiment of the product review as positive, negative or neutral. Reply with one word.';
const TEMPLATE = 'Title: {{title}}\nReview: {{review}}';
const peer = (file: string) => join(BENCH_DIR, 'peers', file);
const out = (name: string) => dataFile(`prepare-out-${name}`);

/** The request lines a variant wrote, in order, read in chunks (a 1M-row output is larger than one JS string). */
function* linesOf(path: string): Generator<string> {
  const chunk = Buffer.allocUnsafe(1 << 20);
  for (const file of requestFiles(path)) {
    const fd = openSync(file, 'r');
    let carry = Buffer.alloc(0);
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) {
      const bytes = Buffer.concat([carry, chunk.subarray(0, n)]);
      let start = 0;
      for (let at = bytes.indexOf(10); at !== -1; at = bytes.indexOf(10, start)) {
        yield bytes.toString('utf8', start, at);
        start = at + 1;
      }
      carry = Buffer.from(bytes.subarray(start));
    }
    closeSync(fd);
    if (carry.length > 0) yield carry.toString('utf8');
  }
}

/** A variant's output: one file, or a prepared directory's request files in order. */
function requestFiles(path: string): string[] {
  return statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((f) => /^requests-\d+\.jsonl$/.test(f))
        .sort()
        .map((f) => join(path, f))
    : [path];
}

/** Lines in a variant's output, read in chunks (a 1M-row output is larger than one JS string). */
function countLines(path: string): number {
  let count = 0;
  for (const file of requestFiles(path)) {
    const fd = openSync(file, 'r');
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) {
      for (let at = chunk.indexOf(10); at !== -1 && at < n; at = chunk.indexOf(10, at + 1)) count++;
    }
    closeSync(fd);
  }
  return count;
}

function cliPrepare(input: string, dir: string, ...more: string[]): Promise<Sample> {
  return runCli(['prepare', input, '--model', MODEL, '--out', dir, '--quiet', ...more]);
}

const all: Measured[] = [];
for (const size of SIZES) {
  const csv = dataFile(`bench-reviews-${size}.csv`);
  const jsonl = dataFile(`bench-reviews-${size}.jsonl`);
  for (const path of [csv, jsonl]) {
    if (existsSync(path)) continue;
    process.stderr.write(`generating ${path}...\n`);
    await writeBenchTable(path, size, 42);
  }
  const parquet = await parquetTable(csv);
  process.stderr.write(
    `prepare, ${fmt(size)} rows (${(statSync(csv).size / 1e6).toFixed(0)} MB CSV), ${machine()}\n`,
  );
  const outputs: Record<string, string> = {};
  const counted: Record<string, number | undefined> = {};
  const variant = (name: string, output: string, run: () => Promise<Sample>): Variant => ({
    name,
    clean: () => rmSync(output, { recursive: true, force: true }),
    run: async () => {
      const sample = await run();
      outputs[name] = output;
      counted[name] = sample.rows ?? countLines(output);
      return sample;
    },
  });
  const compose = (name: string, input: string, mode: string) =>
    variant(name, out(name), () =>
      runOnce(process.execPath, [peer('compose-prepare.mjs'), input, out(name), mode]),
    );
  const variants: Variant[] = [
    variant('python', out('python.jsonl'), () =>
      runOnce('python3', [peer('prepare.py'), csv, out('python.jsonl'), MODEL, SYSTEM]),
    ),
    variant('duckdb', out('duckdb.jsonl'), () =>
      runOnce(process.execPath, [
        peer('duckdb.mjs'),
        peer('prepare_duckdb.sql'),
        csv,
        out('duckdb.jsonl'),
      ]).catch((error: Error) => {
        throw new Error(
          `DuckDB's default CSV reader (default threads) refused ${csv}; the bench does not fall back to one thread:\n${error.message}`,
        );
      }),
    ),
    variant('cli', out('cli'), () => cliPrepare(csv, out('cli'), '--template', TEMPLATE, '--system', SYSTEM)),
    compose('composed', csv, 'plain'),
    compose('composed + Transform', csv, 'transform'),
    compose('composed + mapRows', csv, 'maprows'),
    variant('cli --mapper', out('mapper'), () =>
      cliPrepare(csv, out('mapper'), '--mapper', peer('mapper.mjs')),
    ),
    variant('cli jsonl', out('cli-jsonl'), () =>
      cliPrepare(jsonl, out('cli-jsonl'), '--template', TEMPLATE, '--system', SYSTEM),
    ),
    compose('composed jsonl', jsonl, 'plain'),
    variant('duckdb parquet', out('duckdb-parquet.jsonl'), () =>
      runOnce(process.execPath, [
        peer('duckdb.mjs'),
        peer('prepare_parquet_duckdb.sql'),
        parquet,
        out('duckdb-parquet.jsonl'),
      ]),
    ),
    variant('cli parquet', out('cli-parquet'), () =>
      cliPrepare(parquet, out('cli-parquet'), '--template', TEMPLATE, '--system', SYSTEM),
    ),
  ];
  // The outputs are compared at the smallest size only.
  all.push(...(await interleaved(size, repeat, variants, size === Math.min(...SIZES))));

  for (const [name, n] of Object.entries(counted)) {
    if (n !== size)
      throw new Error(`${name} wrote ${n} requests for ${size} rows: the variants did not do the same work`);
  }
  if (size === Math.min(...SIZES)) {
    // Python's is the reference; with --variants leaving it out, the first variant run.
    const [refName, refOutput] = outputs.python ? ['python', outputs.python] : Object.entries(outputs)[0]!;
    for (const [name, output] of Object.entries(outputs)) {
      if (output === refOutput) continue;
      const theirs = linesOf(output);
      let line = 0;
      for (const expected of linesOf(refOutput)) {
        line++;
        const next = theirs.next();
        if (next.done || !isDeepStrictEqual(JSON.parse(next.value), JSON.parse(expected)))
          throw new Error(
            `${name} and ${refName} wrote different requests at line ${line}:\n${next.done ? '(no line)' : next.value}`,
          );
      }
      if (!theirs.next().done) throw new Error(`${name} wrote more requests than ${refName}`);
    }
    process.stderr.write(`  every variant wrote the same ${fmt(size)} requests\n`);
  }
  for (const output of Object.values(outputs)) rmSync(output, { recursive: true, force: true });
}

const figures = new TableFigures('prepare', all, repeat);
const speed = (a: string, b: string) => figures.speed(a, b);
figures.finish([
  ...figures.sharedChecks([
    'cli',
    'composed',
    'composed + Transform',
    'composed + mapRows',
    'cli --mapper',
    'cli jsonl',
    'composed jsonl',
    'cli parquet',
  ]),
  ...['cli', 'composed'].flatMap((name): Check[] => [
    [`${name} >= 1.2x duckdb rows/s (${speed(name, 'duckdb').toFixed(2)}x)`, speed(name, 'duckdb') >= 1.2],
    [
      `${name} <= 1/4 duckdb peak RSS (${figures.memory(name, 'duckdb').toFixed(2)})`,
      figures.memory(name, 'duckdb') <= 0.25,
    ],
    [`${name} >= 3x python rows/s (${speed(name, 'python').toFixed(2)}x)`, speed(name, 'python') >= 3],
  ]),
  [
    `cli parquet >= 0.7x duckdb parquet rows/s (${speed('cli parquet', 'duckdb parquet').toFixed(2)}x)`,
    speed('cli parquet', 'duckdb parquet') >= 0.7,
  ],
  [
    `cli parquet <= 1/4 duckdb parquet peak RSS (${figures.memory('cli parquet', 'duckdb parquet').toFixed(2)})`,
    figures.memory('cli parquet', 'duckdb parquet') <= 0.25,
  ],
  [
    `cli --mapper >= 2x python rows/s (${speed('cli --mapper', 'python').toFixed(2)}x)`,
    speed('cli --mapper', 'python') >= 2,
  ],
]);
