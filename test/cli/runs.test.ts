import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { readManifest } from '../../src/run/manifest.js';
import { prepare } from '../../src/run/prepare.js';
import { fileWith, tempDir } from '../helpers.js';
import { CLI, runCli } from './run-cli.js';

const root = tempDir('bp-runs-');
let slow: LocalService;

beforeAll(async () => {
  // Slow enough that a command can act on batches while they run: 100 ms a request, 2 at a time.
  slow = await startLocalService({
    timeScale: 1,
    latencyMs: 100,
    concurrency: 2,
    dataDir: join(root, 'service'),
  });
});
afterAll(() => slow.close());

let prepared = 0;
async function prepared_(rows: number, perFile: number): Promise<string> {
  const csv = fileWith(
    root,
    'table.csv',
    `id,text\n${Array.from({ length: rows }, (_, i) => `p${prepared}-${i},t${i}`).join('\n')}\n`,
  );
  const out = join(root, `prep-${prepared++}`);
  await prepare(csv, {
    outDir: out,
    model: 'qwen-plus',
    template: '{{text}}',
    idColumn: 'id',
    maxLinesPerFile: perFile,
  });
  return out;
}

const connect = () => ['--provider', 'local', '--base-url', slow.url];
const onlyRun = (runs: string) => join(runs, readdirSync(runs).find((d) => d.startsWith('run-'))!);

describe('run commands', () => {
  it('submit --no-wait returns once created; status polls; resume finishes; download writes one line per request', async () => {
    const prep = await prepared_(12, 6);
    const runs = join(root, 'runs-nowait');
    const submitted = await runCli(['submit', prep, ...connect(), '--runs-dir', runs, '--no-wait', '--json']);
    expect(submitted.code).toBe(0);
    const report = JSON.parse(submitted.stdout);
    expect(report.state).toBe('submitted');
    expect(report.jobs.map((j: { state: string }) => j.state)).toEqual(['submitted', 'submitted']);
    const runDir = report.run_dir as string;

    const status = await runCli(['status', runDir, ...connect(), '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).counts.rows).toBe(12);
    const offline = await runCli(['status', runDir, '--offline']);
    expect(offline.stderr).toContain(`run ${report.run_id}`);

    const resumed = await runCli(['resume', runDir, ...connect(), '--poll-interval', '0.1']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain('done: 12 rows: 12 ok');

    const download = await runCli([
      'download',
      runDir,
      ...connect(),
      '--out',
      join(root, 'nowait.jsonl'),
      '--json',
    ]);
    expect(JSON.parse(download.stdout)).toEqual({ path: join(root, 'nowait.jsonl'), lines: 12 });
    const records = await slow.records();
    for (const job of (await readManifest(runDir)).jobs) expect(records.batchesByDsName[job.ds_name]).toBe(1);
  });

  it('cancel stops the running batches; what completed is kept, the rest comes back cancelled', async () => {
    // 200 requests at 100 ms, 2 at a time: ten seconds of work, cancelled after about one.
    const prep = await prepared_(200, 200);
    const runs = join(root, 'runs-cancel');
    expect((await runCli(['submit', prep, ...connect(), '--runs-dir', runs, '--no-wait'])).code).toBe(0);
    const runDir = onlyRun(runs);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const cancelled = await runCli(['cancel', runDir, ...connect()]);
    expect(cancelled.code).toBe(0);
    const resumed = await runCli(['resume', runDir, ...connect(), '--poll-interval', '0.1', '--json']);
    expect(resumed.code).toBe(0);
    const { counts, jobs } = JSON.parse(resumed.stdout);
    expect(jobs[0].status).toBe('cancelled');
    expect(counts.cancelled).toBeGreaterThan(0);
    expect(counts.ok + counts.cancelled + counts.failed).toBe(200);
  });

  it('Ctrl-C detaches without losing anything: the batches run on, resume collects them', async () => {
    const prep = await prepared_(8, 4);
    const runs = join(root, 'runs-detach');
    const child = spawn(
      process.execPath,
      [CLI, 'submit', prep, ...connect(), '--runs-dir', runs, '--poll-interval', '0.1'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d;
        if (stderr.split('created').length > 2) resolve();
      });
    });
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stderr).toContain('detaching');
    const runDir = onlyRun(runs);
    const resumed = await runCli(['resume', runDir, ...connect(), '--poll-interval', '0.1']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain('done: 8 rows: 8 ok');
    const records = await slow.records();
    for (const job of (await readManifest(runDir)).jobs) {
      expect(records.uploadsByFilename[job.file_name]).toBe(1);
      expect(records.batchesByDsName[job.ds_name]).toBe(1);
    }
  });

  it("list shows the provider's batches with DashScope's filters", async () => {
    const listed = await runCli([
      'list',
      ...connect(),
      '--status',
      'completed,cancelled',
      '--json',
      '--limit',
      '50',
    ]);
    expect(listed.code).toBe(0);
    const batches = JSON.parse(listed.stdout) as Array<{ status: string; metadata: { ds_name: string } }>;
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.every((b) => b.status === 'completed' || b.status === 'cancelled')).toBe(true);
    const name = batches[0]!.metadata.ds_name;
    const byName = JSON.parse(
      (await runCli(['list', ...connect(), '--ds-name', name, '--json'])).stdout,
    ) as Array<{ metadata: { ds_name: string } }>;
    expect(byName.map((b) => b.metadata.ds_name)).toContain(name);
  });
});
