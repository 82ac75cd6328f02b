/**
 * batch sink: `batchpipe submit` then `batchpipe download` of prepared request files against the
 * embedded local service (started with `batchpipe serve`, its deterministic test engine), as users
 * run them. Counts what a run costs the client (wall, CPU, peak RSS) and the provider (API calls per
 * shard), and checks results.jsonl holds every request exactly once.
 *
 * Run: npm run build && node --import tsx bench/batch-sink.bench.ts [--sizes 100000,1000000]
 *
 * Figures (2 x AMD EPYC, Node v20.20.2, 2026-12-01; a shared machine, wall times vary by 10-20%):
 *
 *   | requests  | shards | submit s | submit CPU s | submit MB | download s | download MB | calls/shard                 |
 *   |   100,000 |      2 |     5.0  |          3.2 |       143 |        1.7 |          94 | upload 1, create 1, poll 12  |
 *   | 1,000,000 |     20 |    37.3  |         20.7 |       128 |        9.6 |          93 | upload 1, create 1, poll 1.5 |
 *
 *   Client memory is flat from 100k to 1M requests (submit 0.9x, download 1.0x): uploads stream each
 *   shard from disk, downloads stream to disk, and results are settled one shard at a time. Download
 *   was 1.33-1.41x before the CLI capped V8's old-generation growth at 1.5x between full collections
 *   (src/cli/main.ts): each shard's ids are garbage once it is settled, and V8's default let 20 shards
 *   of it stand (1M: 140 -> 95 MB, same speed). The sink's own work is the client CPU: about 21 us a
 *   request to submit (read, hash and upload shards, poll) against the service's 27 us to take, run and
 *   return it. No lookups: nothing needed recovering. Polls are one retrieve per running batch a round
 *   (0.2 s here); at 1M most batches have ended by the time the last shard is uploaded, hence 1.5.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { customIdOf, jsonlBuffers } from '../src/run/request-ids.js';
import { writeReviewsCsv } from '../test/fixtures/make-fixtures.js';
import {
  CLI,
  dataFile,
  existsSync,
  fmt,
  machine,
  runCli,
  runOnce,
  SIZES,
  saveResults,
  startServe,
} from './lib.js';

const sizes = SIZES;

const work = await mkdtemp(join(tmpdir(), 'bp-bench-sink-'));
const service = await startServe(join(work, 'service'));
const connect = ['--provider', 'local', '--base-url', service.url];
const rows: Array<Record<string, string | number>> = [];
try {
  for (const size of sizes) {
    const input = dataFile(`reviews-${size}.csv`);
    if (!existsSync(input)) await writeReviewsCsv(input, size, 42);
    const prep = join(work, `prep-${size}`);
    await runOnce(process.execPath, [
      CLI,
      'prepare',
      input,
      '--template',
      'Classify the sentiment: {{review}}',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--out',
      prep,
      '--quiet',
    ]);
    const runs = join(work, `runs-${size}`);
    const cpuBefore = service.cpuSeconds();
    const submit = await runCli([
      'submit',
      prep,
      ...connect,
      '--runs-dir',
      runs,
      '--poll-interval',
      '0.2',
      '--quiet',
    ]);
    const runDir = join(runs, readdirSync(runs).find((d) => d.startsWith('run-'))!);
    const download = await runCli(['download', runDir, ...connect, '--quiet']);
    const serviceCpu = service.cpuSeconds() - cpuBefore;
    let lines = 0;
    const ids = new Set<string>();
    for await (const line of jsonlBuffers(join(runDir, 'results.jsonl'))) {
      lines++;
      ids.add(customIdOf(line)!);
    }
    if (lines !== size || ids.size !== size)
      throw new Error(`results.jsonl holds ${lines} lines and ${ids.size} ids for ${size} requests`);
    const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as {
      jobs: Array<{ calls: Record<string, number> }>;
    };
    const calls: Record<string, number> = {};
    for (const job of manifest.jobs)
      for (const [kind, n] of Object.entries(job.calls)) calls[kind] = (calls[kind] ?? 0) + n;
    const perShard = Object.fromEntries(
      Object.entries(calls).map(([kind, n]) => [kind, Number((n / manifest.jobs.length).toFixed(1))]),
    );
    rows.push({
      requests: size,
      shards: manifest.jobs.length,
      submitSeconds: Number(submit.seconds.toFixed(2)),
      submitCpuSeconds: Number((submit.cpuSeconds ?? 0).toFixed(2)),
      submitPeakMb: Math.round((submit.maxRssKb ?? 0) / 1024),
      downloadSeconds: Number(download.seconds.toFixed(2)),
      downloadCpuSeconds: Number((download.cpuSeconds ?? 0).toFixed(2)),
      downloadPeakMb: Math.round((download.maxRssKb ?? 0) / 1024),
      serviceCpuSeconds: Number(serviceCpu.toFixed(2)),
      callsPerShard: JSON.stringify(perShard),
    });
    process.stderr.write(`  ${fmt(size)}: ${JSON.stringify(rows[rows.length - 1])}\n`);
    rmSync(runs, { recursive: true, force: true });
    rmSync(prep, { recursive: true, force: true });
  }
} finally {
  await service.stop();
  rmSync(work, { recursive: true, force: true });
}

const header = Object.keys(rows[0]!);
console.log(`\nbatch sink (${machine()})\n`);
console.log(`| ${header.join(' | ')} |\n| ${header.map(() => '---').join(' | ')} |`);
for (const row of rows) console.log(`| ${header.map((k) => row[k]).join(' | ')} |`);
const small = rows[0]!;
const big = rows[rows.length - 1]!;
const flat =
  Number(big.submitPeakMb) <= 1.2 * Number(small.submitPeakMb) &&
  Number(big.downloadPeakMb) <= 1.2 * Number(small.downloadPeakMb);
console.log(
  `\n${flat ? 'PASS' : 'MISS'}  client peak RSS at ${fmt(Number(big.requests))} within 1.2x of ${fmt(Number(small.requests))} (submit ${small.submitPeakMb} -> ${big.submitPeakMb} MB, download ${small.downloadPeakMb} -> ${big.downloadPeakMb} MB)`,
);
console.log(`results: ${saveResults('batch-sink', { machine: machine(), rows })}`);
