/**
 * One run tracking many batches: 100, 1,000 and 10,000 batches of one tiny request each, from one run
 * directory, against the local service with its default account quotas (1,000 creates and queries a
 * minute, 100 lists, 1,000 unfinished batches, 10,000 files) on a fast clock (`--time-scale`, default
 * 60: a service minute a real second; the client keeps the same rates in the service's minutes).
 * The service lives in this process; the run (the client: `createOrResumeRun`, then `submit` and
 * `poll` in a loop as `wait` does) in a child process of its own, so its CPU time and peak RSS are its
 * own. Reported per size: client CPU and API calls per poll cycle (median over the cycles that polled
 * running batches; a cycle also downloads what ended), peak RSS, the whole run's time and calls, and
 * the service's records: every file uploaded once, every batch created once, all rows back.
 *
 * Then the resume: a 10,000-batch run killed with SIGKILL once 1,500 batches were created, and resumed:
 * how long until it polls again, and that it creates no batch already created (the service's records).
 *
 * Run: npm run build && node --import tsx bench/many-batches.bench.ts [--sizes 100,1000,10000]
 *      [--time-scale 60] [--no-resume | --resume-only]
 *
 * Figures (2 x AMD EPYC, Node v20.20.2, 2026-12-05, time scale 60; a shared machine with a load
 * average of 15-19 on its 2 cores while this ran, so wall times are long and CPU figures are the steadier):
 *
 *   | batches | poll cycle: list calls / retrieves | poll-only CPU ms (median / max) | cycle CPU ms with downloads | peak RSS MB | run s | client CPU s |
 *   |     100 |  1 / 0 (100 running)              |   5.7 /   5.7                   |   575                       |         154 |   9.3 |          2.5 |
 *   |   1,000 | 10 / 0 (1,000 running)            |  42.2 /  42.2                   | 3,535                       |         188 |  60.4 |         10.1 |
 *   |  10,000 | 10 / 0 (1,000 running, 9,000 held)|  37.9 / 168.9                   | 4,514                       |         322 |   707 |         87.7 |
 *
 *   10,000 vs 1,000: poll-only CPU per cycle 0.9x, a whole cycle (polling, then downloading and
 *   deleting the ~990 batches that ended) 1.3x, peak RSS 1.7x: within the 3x target. The 10,000 run
 *   made 104 list calls for all its polling (and one retrieve), 10,000 uploads and creates (each file
 *   uploaded once, each batch created once, by the service's records), and deleted 20,000 files (inputs
 *   and outputs: it would otherwise pass the account's 10,000 files), within the service's default
 *   quotas (no 429). What grows with the batches is the manifest in memory and its snapshot (19 MB at
 *   10,000 jobs, written once per 20,000 journal lines); a step appends one ~1 KB line.
 *
 *   Resume: a 10,000-batch run killed with SIGKILL after 1,501 creates, resumed: the new process had
 *   read its run (snapshot and journal) in 0.95 s and was polling 0.96 s after it started (3.7 s after
 *   the spawn, Node and tsx start-up included), with 517 batches running; it then made 8,499 creates,
 *   none for a batch already created (10,000 creates in all, each ds_name once), and every row came
 *   back. Before a resumed run polled first it created up to the cap before polling (35 s).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startLocalService } from '../src/local/index.js';
import { resolveConnection } from '../src/providers/connection.js';
import type { PreparedSummary } from '../src/run/sharder.js';
import { createOrResumeRun, openRun } from '../src/run/start-run.js';
import { machine, saveResults } from './lib.js';

const SELF = fileURLToPath(import.meta.url);

function arg(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? undefined : process.argv[at + 1];
}

interface ChildConfig {
  url: string;
  dir: string;
  batches: number;
  timeScale: number;
  pollSeconds: number;
  resume: boolean;
}

/** A line the child prints per cycle, and at its end. */
interface Cycle {
  type: 'cycle';
  at: number;
  submitCpuMs: number;
  pollCpuMs: number;
  /** CPU of the polling alone (list pages or retrieves, and recording what they said), downloads apart. */
  pollOnlyCpuMs: number;
  list: number;
  retrieve: number;
  finished: number;
  running: number;
  pending: number;
  rssMb: number;
}

// ------------------------------------------------------------------------------------------ child

async function child(config: ChildConfig): Promise<void> {
  const started = performance.now();
  const connection = resolveConnection({ provider: 'local', baseURL: config.url }, {});
  const runDir = join(config.dir, 'run');
  const options = {
    runDir,
    concurrency: 16,
    pollInterval: config.pollSeconds,
    lookupDelay: 0.2,
    providerTimeScale: config.timeScale,
  };
  let run: Awaited<ReturnType<typeof openRun>>;
  if (config.resume) run = await openRun(runDir, connection, options);
  else {
    const prep = join(config.dir, 'prep');
    mkdirSync(prep, { recursive: true });
    const shards = [];
    for (let i = 1; i <= config.batches; i++) {
      const file = `requests-${String(i).padStart(5, '0')}.jsonl`;
      const line = `${JSON.stringify({
        custom_id: `r${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'qwen-plus', messages: [{ role: 'user', content: `say ${i}` }] },
      })}\n`;
      writeFileSync(join(prep, file), line);
      shards.push({
        file,
        model: 'qwen-plus',
        endpoint: '/v1/chat/completions',
        lines: 1,
        bytes: Buffer.byteLength(line),
        sha256: String(i),
        first_row: i,
        last_row: i,
      });
    }
    const summary: PreparedSummary = {
      version: 1,
      rows: config.batches,
      requests: config.batches,
      rejected: 0,
      shards,
      rejections: { file: 'rejections.jsonl', count: 0, by_code: {} },
    };
    writeFileSync(join(prep, 'shards.json'), JSON.stringify(summary));
    run = await createOrResumeRun(prep, summary, connection, options, false);
  }
  console.log(JSON.stringify({ type: 'opened', ms: Math.round(performance.now() - started) }));
  let done = run.manifest.jobs.filter((j) => j.state === 'done').length;
  // As BatchRun.wait: a resumed run polls what runs before it submits more.
  const resumedRunning = run.manifest.jobs.filter((j) => j.state === 'submitted').length;
  if (resumedRunning > 0) {
    console.log(
      JSON.stringify({
        type: 'polling',
        ms: Math.round(performance.now() - started),
        running: resumedRunning,
      }),
    );
    await run.poll();
  }
  for (let round = 0; ; round++) {
    const c0 = process.cpuUsage();
    await run.submit();
    const c1 = process.cpuUsage();
    const calls = run.pollCalls;
    const running = run.manifest.jobs.filter((j) => j.state === 'submitted').length;
    if (round === 0 && resumedRunning === 0)
      console.log(JSON.stringify({ type: 'polling', ms: Math.round(performance.now() - started), running }));
    const waiting = await run.poll();
    const c2 = process.cpuUsage();
    const after = run.pollCalls;
    const nowDone = run.manifest.jobs.filter((j) => j.state === 'done').length;
    const cycle: Cycle = {
      type: 'cycle',
      at: Math.round(performance.now() - started),
      submitCpuMs: cpuMs(c0, c1),
      pollCpuMs: cpuMs(c1, c2),
      pollOnlyCpuMs: Math.round((after.cpuMs - calls.cpuMs) * 10) / 10,
      list: after.list - calls.list,
      retrieve: after.retrieve - calls.retrieve,
      finished: nowDone - done,
      running,
      pending: run.manifest.jobs.filter((j) => j.state === 'pending').length,
      rssMb: Math.round(process.memoryUsage.rss() / 1e6),
    };
    done = nowDone;
    console.log(JSON.stringify(cycle));
    if (!waiting && !run.manifest.jobs.some((j) => j.state !== 'done')) break;
    if (!run.manifest.jobs.some((j) => j.state === 'pending'))
      await new Promise((resolve) => setTimeout(resolve, config.pollSeconds * 1000));
  }
  const counts = run.counts();
  await run.close();
  const usage = process.resourceUsage();
  console.log(
    JSON.stringify({
      type: 'end',
      ms: Math.round(performance.now() - started),
      ok: counts.ok,
      failed: counts.failed,
      jobs: run.manifest.jobs.length,
      maxRssKb: usage.maxRSS,
      cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6,
    }),
  );
}

function cpuMs(a: NodeJS.CpuUsage, b: NodeJS.CpuUsage): number {
  return Math.round((b.user - a.user + b.system - a.system) / 100) / 10;
}

// ----------------------------------------------------------------------------------------- parent

interface Spawned {
  proc: ChildProcess;
  lines: Array<Record<string, unknown>>;
  closed: Promise<number | null>;
}

function spawnChild(config: ChildConfig, onLine?: (line: Record<string, unknown>) => void): Spawned {
  const proc = spawn(process.execPath, ['--import', 'tsx', SELF, '--child', JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Array<Record<string, unknown>> = [];
  createInterface({ input: proc.stdout! }).on('line', (text) => {
    try {
      const line = JSON.parse(text) as Record<string, unknown>;
      lines.push(line);
      onLine?.(line);
    } catch {
      process.stderr.write(`${text}\n`);
    }
  });
  const closed = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  return { proc, lines, closed };
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function withService<T>(
  timeScale: number,
  body: (url: string, calls: Map<string, number>, records: () => Promise<Dupes>) => Promise<T>,
): Promise<T> {
  const calls = new Map<string, number>();
  // The simulated provider keeps its state in memory-backed storage where there is some: its fsyncs
  // are no part of what is measured (the client's run directory stays on the ordinary disk).
  const shm = existsSync('/dev/shm') ? await mkdtemp('/dev/shm/bp-many-service-') : undefined;
  const service = await startLocalService({
    ...(shm && { dataDir: shm }),
    timeScale,
    maxActiveBatches: 64,
    log: (line) => {
      const m = /^([A-Z]+) (\S+) (\d{3})/.exec(line);
      if (!m) return;
      const path = m[2]!.replace(/\/(file|batch)[-_][\w-]+/g, '/:id');
      const key = `${m[1]} ${path}${m[3] === '200' ? '' : ` ${m[3]}`}`;
      calls.set(key, (calls.get(key) ?? 0) + 1);
    },
  });
  try {
    return await body(service.url, calls, async () => {
      const r = await service.records();
      return {
        uploads: r.calls.filter((c) => c.op === 'file.create').length,
        creates: r.calls.filter((c) => c.op === 'batch.create').length,
        deletes: r.calls.filter((c) => c.op === 'file.delete').length,
        twiceUploaded: Object.values(r.uploadsByFilename).filter((n) => n > 1).length,
        twiceCreated: Object.values(r.batchesByDsName).filter((n) => n > 1).length,
      };
    });
  } finally {
    await service.close();
    if (shm) await rm(shm, { recursive: true, force: true });
  }
}

interface Dupes {
  uploads: number;
  creates: number;
  deletes: number;
  twiceUploaded: number;
  twiceCreated: number;
}

async function measure(batches: number, timeScale: number): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'bp-many-'));
  try {
    return await withService(timeScale, async (url, calls, records) => {
      const child = spawnChild({ url, dir, batches, timeScale, pollSeconds: 0.5, resume: false });
      const code = await child.closed;
      if (code !== 0) throw new Error(`the run of ${batches} batches exited ${code}`);
      const cycles = child.lines.filter((l) => l.type === 'cycle') as unknown as Cycle[];
      const polled = cycles.filter((c) => c.running > 0);
      const end = child.lines.find((l) => l.type === 'end')!;
      const r = await records();
      return {
        batches,
        cycles: cycles.length,
        pollCpuMs: median(polled.map((c) => c.pollCpuMs)),
        pollCpuMsMax: Math.max(...polled.map((c) => c.pollCpuMs)),
        pollOnlyCpuMs: median(polled.map((c) => c.pollOnlyCpuMs)),
        pollOnlyCpuMsMax: Math.max(...polled.map((c) => c.pollOnlyCpuMs)),
        submitCpuMs: median(cycles.map((c) => c.submitCpuMs)),
        listPerCycle: median(polled.map((c) => c.list)),
        retrievePerCycle: median(polled.map((c) => c.retrieve)),
        runningPerCycle: median(polled.map((c) => c.running)),
        finishedPerCycle: median(polled.map((c) => c.finished)),
        peakRssMb: Math.round(Number(end.maxRssKb) / 1024),
        cpuSeconds: end.cpuSeconds,
        seconds: Number(end.ms) / 1000,
        ok: end.ok,
        ...r,
        calls: Object.fromEntries([...calls].sort()),
      };
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A run of `batches` killed with SIGKILL once `killAt` batches were created, then resumed to its end. */
async function resume(batches: number, killAt: number, timeScale: number): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'bp-many-'));
  try {
    return await withService(timeScale, async (url, calls, records) => {
      const config = { url, dir, batches, timeScale, pollSeconds: 0.5, resume: false };
      const first = spawnChild(config);
      while ((calls.get('POST /v1/batches') ?? 0) < killAt && first.proc.exitCode === null)
        await new Promise((resolve) => setTimeout(resolve, 5));
      first.proc.kill('SIGKILL');
      await first.closed;
      const before = await records();
      const createsBefore = calls.get('POST /v1/batches') ?? 0;
      const spawnedAt = performance.now();
      let pollingAt: number | undefined;
      const second = spawnChild({ ...config, resume: true }, (line) => {
        if (line.type === 'polling') pollingAt = performance.now();
      });
      const code = await second.closed;
      if (code !== 0) throw new Error(`the resumed run exited ${code}`);
      const after = await records();
      const end = second.lines.find((l) => l.type === 'end')!;
      const polling = second.lines.find((l) => l.type === 'polling')!;
      const opened = second.lines.find((l) => l.type === 'opened')!;
      return {
        batches,
        killedAfterCreates: before.creates,
        resumePollingAfterMs: Math.round((pollingAt ?? Number.NaN) - spawnedAt),
        childPollingAfterMs: polling.ms,
        childOpenedAfterMs: opened.ms,
        runningAtResume: polling.running,
        createsAfterResume: (calls.get('POST /v1/batches') ?? 0) - createsBefore,
        creates: after.creates,
        twiceCreated: after.twiceCreated,
        twiceUploaded: after.twiceUploaded,
        ok: end.ok,
        seconds: Number(end.ms) / 1000,
      };
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const childConfig = arg('child');
  if (childConfig) return child(JSON.parse(childConfig) as ChildConfig);
  const sizes = (arg('sizes') ?? '100,1000,10000').split(',').map(Number);
  const timeScale = Number(arg('time-scale') ?? 60);
  const results: Record<string, unknown> = { machine: machine(), timeScale, sizes: [] as unknown[] };
  for (const size of process.argv.includes('--resume-only') ? [] : sizes) {
    const measured = await measure(size, timeScale);
    console.log(JSON.stringify(measured));
    (results.sizes as unknown[]).push(measured);
  }
  if (!process.argv.includes('--no-resume')) {
    const size = Math.max(...sizes);
    results.resume = await resume(size, Math.min(1500, Math.floor(size * 0.15)), timeScale);
    console.log(JSON.stringify(results.resume));
  }
  console.log(saveResults('many-batches', results));
}

await main();
