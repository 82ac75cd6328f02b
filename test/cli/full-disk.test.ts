/**
 * Issue 12, item 1, through the CLI users run: `prepare`, `join` and `run` writing to a real full
 * disk (a tmpfs) exit 1 with BP_OUTPUT_WRITE naming the file, no stack trace, nothing under the final
 * name; a run whose run directory fills up mid-run keeps its manifest readable, and once space is
 * freed the same command finishes, the provider seeing each batch created exactly once (counted
 * through its batch list).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { readManifestSync } from '../../src/run/manifest.js';
import { tempDir } from '../helpers.js';
import { filesUnder, mountSmallDisk } from '../support/small-disk.js';
import { CLI, runCli } from './run-cli.js';

const root = tempDir('bp-full-cli-');
const disk = mountSmallDisk(1024 * 1024);
if (typeof disk === 'string') console.warn(`skipped the full-disk CLI tests: ${disk}`);

let service: LocalService;
let flags: string[];
beforeAll(async () => {
  service = await startLocalService({ dataDir: join(root, 'service'), seed: 12 });
  flags = ['--provider', 'local', '--base-url', service.url, '--poll-interval', '0.2'];
});
afterAll(async () => {
  await service?.close();
  if (typeof disk !== 'string') disk.unmount();
});

const ROWS = 3000;
const input = join(root, 'in.csv');
writeFileSync(
  input,
  `id,text\n${Array.from({ length: ROWS }, (_, i) => `${i},"row ${i}, with some text to answer"\n`).join('')}`,
);
const prepareFlags = ['--template', 'Say: {{text}}', '--model', 'qwen-plus', '--id-column', 'id'];

/** The coded, one-line refusal the CLI must print: no stack trace. */
function expectRefusal(result: { code: number | null; stderr: string }, code: string, file: string) {
  expect(result.code, result.stderr).toBe(1);
  expect(result.stderr).toContain(`error ${code}: ${file}: cannot be written: `);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

/** Batches the provider holds for a run (every run: ""), from its batch list, by job. */
async function createdByJob(runId: string): Promise<Map<string, number>> {
  const client = new OpenAI({ baseURL: service.url, apiKey: 'local', maxRetries: 0 });
  const jobs = new Map<string, number>();
  for await (const batch of client.batches.list({ limit: 100 })) {
    const metadata = (batch.metadata ?? {}) as Record<string, string>;
    if (runId !== '' && metadata.bp_run !== runId) continue;
    const key = runId === '' ? `${metadata.bp_run}/${metadata.bp_job}` : metadata.bp_job!;
    jobs.set(key, (jobs.get(key) ?? 0) + 1);
  }
  return jobs;
}

describe.skipIf(typeof disk === 'string')('the CLI on a full disk', () => {
  const small = disk as Exclude<typeof disk, string>;

  it('prepare --out on a full tmpfs: exit 1, BP_OUTPUT_WRITE naming the shard, no shard cut short', async () => {
    small.empty();
    small.fill(64 * 1024);
    const out = join(small.dir, 'prepared');
    const result = await runCli(['prepare', input, '--out', out, ...prepareFlags]);
    expectRefusal(result, 'BP_OUTPUT_WRITE', join(out, 'requests-00001.jsonl'));
    expect(result.stderr).toContain('no space left on the device (ENOSPC)');
    expect(filesUnder(small.dir)).toEqual(['.filler']);
  });

  it('join --out on a full tmpfs: exit 1 naming the table, and no table', async () => {
    const runDir = join(root, 'run-for-join');
    const ran = await runCli(
      ['run', input, ...prepareFlags, '--out', join(root, 'ran.csv'), '--run-dir', runDir, ...flags],
      { cwd: root },
    );
    expect(ran.code, ran.stderr).toBe(0);
    for (const name of ['joined.csv', 'joined.tsv', 'joined.jsonl']) {
      small.empty();
      small.fill(64 * 1024);
      const out = join(small.dir, 'tables', name);
      const result = await runCli([
        'join',
        '--source',
        input,
        '--results',
        runDir,
        '--id-column',
        'id',
        '--out',
        out,
      ]);
      expectRefusal(result, 'BP_OUTPUT_WRITE', out);
      expect(result.stderr).not.toContain('wrote');
      expect(filesUnder(small.dir)).toEqual(['.filler']);
    }
  });

  it('run --out on a full tmpfs: exit 1, no table; freed, the same command writes it without submitting again', async () => {
    small.empty();
    small.fill(64 * 1024);
    const out = join(small.dir, 'labeled.csv');
    const runsDir = join(root, 'runs-out-full');
    const args = [
      'run',
      input,
      ...prepareFlags,
      '--max-lines-per-file',
      '1000',
      '--out',
      out,
      '--runs-dir',
      runsDir,
      ...flags,
    ];
    const first = await runCli(args, { cwd: root });
    expectRefusal(first, 'BP_OUTPUT_WRITE', out);
    expect(filesUnder(small.dir)).toEqual(['.filler']);
    const [runId] = readdirSync(runsDir);
    const before = await createdByJob(runId!);
    expect([...before.values()]).toEqual([1, 1, 1]);

    small.empty();
    const again = await runCli(args, { cwd: root });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/^created /m);
    expect(readFileSync(out, 'utf8').trimEnd().split('\n')).toHaveLength(ROWS + 1);
    expect(await createdByJob(runId!)).toEqual(before);
  });

  it('run --runs-dir on a full tmpfs: exit 1 naming the shard, nothing staged is left, nothing submitted', async () => {
    small.empty();
    small.fill(64 * 1024);
    const runsDir = join(small.dir, 'runs');
    const before = (await createdByJob('')).size;
    const result = await runCli(
      ['run', input, ...prepareFlags, '--out', join(root, 'never.csv'), '--runs-dir', runsDir, ...flags],
      { cwd: root },
    );
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(
      /error BP_OUTPUT_WRITE: \S+\/requests-00001\.jsonl: cannot be written: no space left/,
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(filesUnder(small.dir)).toEqual(['.filler']);
    expect(readdirSync(runsDir)).toEqual([]);
    expect((await createdByJob('')).size).toBe(before);
  });

  it('run whose run directory fills up mid-run: exit 1, manifest readable; freed, the rerun finishes with every batch created once', async () => {
    small.empty();
    small.resize(1024 * 1024);
    const runsDir = join(small.dir, 'runs');
    const out = join(root, 'mid-run.csv');
    const args = [
      'run',
      input,
      ...prepareFlags,
      '--max-lines-per-file',
      '500',
      '--out',
      out,
      '--runs-dir',
      runsDir,
      ...flags,
    ];
    const first = await runCli(args, { cwd: root });
    expect(first.code, first.stderr).toBe(1);
    expect(first.stderr).toMatch(
      /error BP_OUTPUT_WRITE: \S+: cannot be written: no space left on the device/,
    );
    expect(first.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
    const [runId] = readdirSync(runsDir).filter((name) => name.startsWith('run-'));
    const runDir = join(runsDir, runId!);
    // What the run had is kept: the manifest reads, and names the batches it created.
    const manifest = readManifestSync(runDir);
    expect(manifest.jobs).toHaveLength(6);
    expect(manifest.jobs.some((j) => j.batch_id !== null)).toBe(true);
    // Nothing half-written under a final name: every file the run listed as downloaded is whole.
    expect(filesUnder(runDir).filter((f) => /\.(partial|tmp)$/.test(f))).toEqual([]);
    for (const job of manifest.jobs.filter((j) => j.output_path)) {
      const lines = readFileSync(join(runDir, job.output_path!), 'utf8').trimEnd().split('\n');
      expect(lines).toHaveLength(job.lines);
    }

    small.resize(16 * 1024 * 1024);
    const again = await runCli(args, { cwd: root });
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(out, 'utf8').trimEnd().split('\n')).toHaveLength(ROWS + 1);
    const created = await createdByJob(runId!);
    expect(created.size).toBe(6);
    expect([...created.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('standard output on /dev/full', () => {
  /** Runs the CLI with its standard output going to /dev/full, as `batchpipe ... > /dev/full` does. */
  function intoDevFull(args: string[]): Promise<{ code: number | null; stderr: string }> {
    const full = openSync('/dev/full', 'w');
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', full, 'pipe'] });
      closeSync(full);
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d;
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
  }

  it('a --json result that cannot be written fails the command: exit 1, one coded line, no stack trace', async () => {
    const out = join(root, 'prepared-json');
    const result = await intoDevFull(['prepare', input, '--out', out, ...prepareFlags, '--json']);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toBe(
      'error BP_OUTPUT_WRITE: standard output: cannot be written: no space left on the device (ENOSPC)\n',
    );
    const listed = await intoDevFull(['list', '--json', ...flags.slice(0, 4)]);
    expect(listed.code, listed.stderr).toBe(1);
    expect(listed.stderr).toContain('error BP_OUTPUT_WRITE: standard output: cannot be written');
    expect(listed.stderr).not.toMatch(/\n\s+at /);
  });
});
