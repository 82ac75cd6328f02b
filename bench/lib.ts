/**
 * Shared benchmark plumbing: run a variant as its own process (so peak RSS is that variant's alone),
 * repeat it, and report median, spread and ratios. Each variant prints a JSON line with `rows` and
 * `maxRssKb` (its own process.resourceUsage / getrusage); the wall clock is taken here.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const DATA_DIR = join(BENCH_DIR, 'data');
export const RESULTS_DIR = join(BENCH_DIR, 'results');

export interface Sample {
  seconds: number;
  maxRssKb: number | undefined;
  rows: number | undefined;
  /** CPU seconds (user + system) the variant reported, if it did. */
  cpuSeconds?: number | undefined;
}

export interface Measured {
  name: string;
  size: number;
  samples: Sample[];
  seconds: number;
  spread: number;
  rowsPerSecond: number;
  maxRssMb: number | undefined;
}

/** Runs a command, returns wall time and the last JSON object it printed (stdout or stderr). */
export function runOnce(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0)
        return reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${out.slice(-2000)}`));
      const report = lastJson(out);
      resolve({
        seconds,
        maxRssKb: report.maxRssKb as number | undefined,
        rows: report.rows as number | undefined,
        cpuSeconds: report.cpuSeconds as number | undefined,
      });
    });
  });
}

function lastJson(text: string): Record<string, unknown> {
  const lines = text.trim().split('\n').reverse();
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {}
  }
  return {};
}

/** What `at` answers for a variant not run: every figure NaN, so its ratios print as NaN. */
const MISSING: Measured = {
  name: '',
  size: 0,
  samples: [],
  seconds: Number.NaN,
  spread: Number.NaN,
  rowsPerSecond: Number.NaN,
  maxRssMb: Number.NaN,
};

/** A variant of a benchmark: a name and how to run it once. */
export interface Variant {
  name: string;
  /** Removes what the last run wrote (untimed, and flushed to disk before the next run starts). */
  clean: () => void;
  run: () => Promise<Sample>;
}

/**
 * Runs every variant `repeat` times, interleaved (round 1 of each, then round 2 of each...), so a
 * slow spell of a shared machine falls on all of them alike; median wall time, spread (max-min over
 * median) and the worst peak RSS of each. Each output is deleted once its run is measured, but the
 * last round's with `keepLast` (for the caller to compare): a round's outputs at 1M rows were some
 * 10 GB of page cache, which pushed out the input files fewer variants read (the JSON Lines table),
 * and their runs then read it from disk (2.3 s alone, 2.3-3.3 s in the bench).
 */
export async function interleaved(
  size: number,
  repeat: number,
  all: Variant[],
  keepLast = true,
): Promise<Measured[]> {
  const variants = ONLY === undefined ? all : all.filter((v) => ONLY!.includes(v.name));
  const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
  // One untimed round first: the first runs after a size's data is made (or after the other size)
  // were slow for every variant alike, by up to 50% (two join runs, rounds 1-2 of 5), which a median
  // of 5 does not always absorb.
  for (let round = 1 - WARMUP; round <= repeat; round++) {
    // Each round starts one variant later, so none always runs right after the same neighbour.
    const start = (((round - 1) % variants.length) + variants.length) % variants.length;
    for (const variant of [...variants.slice(start), ...variants.slice(0, start)]) {
      // The last output is deleted and the disk settled first: neither the previous variant's
      // write-back nor this one's deletion is timed here.
      variant.clean();
      spawnSync('sync');
      const sample = await variant.run();
      if (round >= 1) samples.get(variant.name)!.push(sample);
      if (round < repeat || !keepLast) variant.clean();
      process.stderr.write(
        `  ${variant.name} @ ${fmt(size)} (${round >= 1 ? `${round}/${repeat}` : 'warm-up, untimed'}): ${sample.seconds.toFixed(2)} s, ${sample.maxRssKb === undefined ? '-' : (sample.maxRssKb / 1024).toFixed(0)} MB\n`,
      );
    }
  }
  return variants.map(({ name }) => summarize(name, size, samples.get(name)!));
}

function summarize(name: string, size: number, samples: Sample[]): Measured {
  const times = samples.map((s) => s.seconds).sort((a, b) => a - b);
  const seconds = times[Math.floor(times.length / 2)]!;
  const rss = samples.map((s) => s.maxRssKb).filter((v): v is number => v !== undefined);
  return {
    name,
    size,
    samples,
    seconds,
    spread: (times[times.length - 1]! - times[0]!) / seconds,
    rowsPerSecond: size / seconds,
    maxRssMb: rss.length > 0 ? Math.max(...rss) / 1024 : undefined,
  };
}

export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function machine(): string {
  return `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
}

/** Keeps a bench's figures: every sample as JSON, and the printed table and checks (if given) as Markdown. */
export function saveResults(name: string, value: unknown, report?: string): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
  if (report) writeFileSync(join(RESULTS_DIR, `${name}.md`), `${report.trim()}\n`);
  return path;
}

export function dataFile(name: string): string {
  mkdirSync(DATA_DIR, { recursive: true });
  return join(DATA_DIR, name);
}

export { existsSync };

/**
 * The bench table as DuckDB writes it to zstd Parquet (its CSV reader's types: id and rating BIGINT,
 * created_at TIMESTAMP, texts VARCHAR), beside the CSV; made once.
 */
export async function parquetTable(csv: string): Promise<string> {
  const path = csv.replace(/\.csv$/, '.parquet');
  if (existsSync(path)) return path;
  process.stderr.write(`generating ${path}...\n`);
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:');
  const db = await instance.connect();
  await db.run(
    `COPY (SELECT * FROM read_csv('${csv}', header = true)) TO '${path}' (FORMAT parquet, COMPRESSION zstd)`,
  );
  db.closeSync();
  instance.closeSync();
  return path;
}

/** `--name value` pairs from the command line. */
export const ARGS: ReadonlyMap<string, string> = (() => {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2)
    args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
  return args;
})();

/**
 * `--variants 'cli,duckdb'` runs only those variants: for measuring one path while working on it. The
 * checks that need a variant not run are left out, and bench/results is not written.
 */
export const ONLY: readonly string[] | undefined = ARGS.get('variants')?.split(',');

/** `--warmup 1` (the default): untimed rounds of every variant before the timed ones. */
export const WARMUP: number = Number(ARGS.get('warmup') ?? 1);

/** `--sizes 100000,1000000` (the default). */
export const SIZES: readonly number[] = (ARGS.get('sizes') ?? '100000,1000000').split(',').map(Number);

/** The built CLI the benchmarks run, as users do. */
export const CLI = join(BENCH_DIR, '..', 'dist', 'cli', 'main.js');

/** Runs the built CLI as users do (its shebang, its flags) and measures that process. */
export function runCli(args: string[]): Promise<Sample> {
  return runOnce('python3', [join(BENCH_DIR, 'peers', 'rusage.py'), CLI, ...args]);
}

/** A `batchpipe serve` running as its own process, measured from /proc. */
export interface Service {
  url: string;
  pid: number;
  /** Peak resident set so far, MB (VmHWM). */
  peakMb(): number;
  /** CPU seconds used so far (user + system). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/**
 * Starts `batchpipe serve` on a data dir, as users run it (the CLI's own shebang), and waits for its
 * URL. BENCH_SERVICE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" runs it under node with those
 * flags instead (to profile it).
 */
export async function startServe(dataDir: string, args: string[] = []): Promise<Service> {
  const nodeArgs = process.env.BENCH_SERVICE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const serve = [CLI, 'serve', '--port', '0', '--data-dir', dataDir, ...args];
  const child =
    nodeArgs.length > 0
      ? spawn(process.execPath, [...nodeArgs, ...serve], { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn(serve[0]!, serve.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve(line.trim());
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code} before printing its URL`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url,
    pid: child.pid!,
    peakMb: () => {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return match ? Number(match[1]) / 1024 : Number.NaN;
    },
    cpuSeconds: () => {
      // Fields 14 and 15 of /proc/<pid>/stat (after the command name) are utime and stime in ticks.
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A target and whether the run met it. */
export type Check = [what: string, met: boolean];

/**
 * The figures of a table bench (prepare, join): every variant at every size against the CLI, DuckDB
 * and Python, and the checks they share; `finish` prints the checks and keeps everything.
 */
export class TableFigures {
  readonly #all: Measured[];
  readonly #bench: string;
  readonly #repeat: number;
  readonly big = Math.max(...SIZES);
  readonly small = Math.min(...SIZES);

  constructor(bench: string, all: Measured[], repeat: number) {
    this.#bench = bench;
    this.#all = all;
    this.#repeat = repeat;
  }

  at(name: string, size: number): Measured {
    return this.#all.find((r) => r.name === name && r.size === size) ?? MISSING;
  }

  /** How many times `a`'s rows/s is `b`'s, at the largest size. */
  speed(a: string, b: string): number {
    return this.at(a, this.big).rowsPerSecond / this.at(b, this.big).rowsPerSecond;
  }

  /** `a`'s peak RSS over `b`'s, at the largest size. */
  memory(a: string, b: string): number {
    return (this.at(a, this.big).maxRssMb ?? Infinity) / (this.at(b, this.big).maxRssMb ?? 0);
  }

  /** The Markdown table: every variant at every size, ratios to the CLI and to each peer. */
  table(): string {
    const lines = [
      `## ${this.#bench} (${machine()}, median of ${this.#repeat})`,
      '',
      '| variant | rows | median s | spread | rows/s | vs cli | vs duckdb | vs python | peak RSS MB | RSS vs duckdb |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ];
    for (const r of this.#all) {
      const ratio = (peer: string) => (r.rowsPerSecond / this.at(peer, r.size).rowsPerSecond).toFixed(2);
      const rss = (peer: string) =>
        ((r.maxRssMb ?? Number.NaN) / (this.at(peer, r.size).maxRssMb ?? Number.NaN)).toFixed(2);
      lines.push(
        `| ${r.name} | ${fmt(r.size)} | ${r.seconds.toFixed(2)} | ${(r.spread * 100).toFixed(0)}% | ${fmt(r.rowsPerSecond)} | ${ratio('cli')}x | ${ratio('duckdb')}x | ${ratio('python')}x | ${r.maxRssMb?.toFixed(0) ?? '-'} | ${rss('duckdb')} |`,
      );
    }
    return lines.join('\n');
  }

  /**
   * What both table benches ask: the composition within 1.15x of the CLI, JSON Lines within 1.3x of
   * CSV (CLI and composed), and each of `ours` no more than 1.2x the peak RSS from the smallest size
   * to the largest.
   */
  sharedChecks(ours: readonly string[]): Check[] {
    const checks: Check[] = [
      [
        `composed within 1.15x of the CLI (${this.speed('cli', 'composed').toFixed(2)}x)`,
        this.speed('cli', 'composed') <= 1.15,
      ],
    ];
    for (const name of ['cli', 'composed']) {
      const slower = this.speed(name, `${name} jsonl`);
      checks.push([`${name} jsonl within 1.3x of ${name} csv (${slower.toFixed(2)}x)`, slower <= 1.3]);
    }
    if (this.big === this.small) return checks;
    for (const name of ours) {
      const grown =
        (this.at(name, this.big).maxRssMb ?? Infinity) / (this.at(name, this.small).maxRssMb ?? 0);
      checks.push([
        `${name} peak RSS at ${fmt(this.big)} within 1.2x of ${fmt(this.small)} (${grown.toFixed(2)}x)`,
        grown <= 1.2,
      ]);
    }
    return checks;
  }

  /** Prints the table and the checks, and keeps them with every sample in bench/results. */
  finish(all: readonly Check[]): void {
    const table = this.table();
    // A check on a variant not run (--variants) has a NaN figure in it: left out.
    const checks = all.filter(([what]) => !what.includes('NaN') && !what.includes('Infinity'));
    const verdicts = checks.map(([what, ok]) => `${ok ? 'PASS' : 'MISS'}  ${what}`).join('\n');
    console.log(`\n${table}\n\n${verdicts}`);
    const report = `${table}\n\n\`\`\`\n${verdicts}\n\`\`\`\n`;
    if (ONLY !== undefined) return;
    const value = { machine: machine(), repeat: this.#repeat, results: this.#all, checks };
    console.log(`\nresults: ${saveResults(this.#bench, value, report)}`);
  }
}
