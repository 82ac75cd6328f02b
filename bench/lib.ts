/**
 * Shared benchmark plumbing: run a variant as its own process (so peak RSS is that variant's alone),
 * repeat it, and report median, spread and ratios. Each variant prints a JSON line with `rows` and
 * `maxRssKb` (its own process.resourceUsage / getrusage); the wall clock is taken here.
 */
import { spawn } from 'node:child_process';
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

/** Runs a variant `repeat` times; median wall time, spread (max-min over median), worst peak RSS. */
export async function measure(
  name: string,
  size: number,
  repeat: number,
  run: () => Promise<Sample>,
): Promise<Measured> {
  const samples: Sample[] = [];
  for (let i = 0; i < repeat; i++) samples.push(await run());
  const times = samples.map((s) => s.seconds).sort((a, b) => a - b);
  const seconds = times[Math.floor(times.length / 2)]!;
  const rss = samples.map((s) => s.maxRssKb).filter((v): v is number => v !== undefined);
  const measured: Measured = {
    name,
    size,
    samples,
    seconds,
    spread: (times[times.length - 1]! - times[0]!) / seconds,
    rowsPerSecond: size / seconds,
    maxRssMb: rss.length > 0 ? Math.max(...rss) / 1024 : undefined,
  };
  process.stderr.write(
    `  ${name} @ ${size}: ${fmt(measured.rowsPerSecond)} rows/s, ${measured.maxRssMb?.toFixed(0) ?? '-'} MB\n`,
  );
  return measured;
}

export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A table of variants with ratios to a baseline. */
export function table(results: Measured[], baseline: string): string {
  const lines = [
    `| variant | rows | median s | spread | rows/s | vs ${baseline} | peak RSS MB |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of results) {
    const base = results.find((b) => b.name === baseline && b.size === r.size);
    const ratio = base ? `${(r.rowsPerSecond / base.rowsPerSecond).toFixed(2)}x` : '-';
    lines.push(
      `| ${r.name} | ${fmt(r.size)} | ${r.seconds.toFixed(2)} | ${(r.spread * 100).toFixed(0)}% | ${fmt(r.rowsPerSecond)} | ${ratio} | ${r.maxRssMb?.toFixed(0) ?? '-'} |`,
    );
  }
  return lines.join('\n');
}

export function machine(): string {
  return `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
}

export function saveResults(name: string, value: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
  return path;
}

export function dataFile(name: string): string {
  mkdirSync(DATA_DIR, { recursive: true });
  return join(DATA_DIR, name);
}

export { existsSync };

/** `--name value` pairs from the command line. */
export const ARGS: ReadonlyMap<string, string> = (() => {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2)
    args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
  return args;
})();

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
