/**
 * Exactly-once across run directories: the same command from another working directory, with another
 * --runs-dir, or after its run directory was deleted, adopts the batches a run of the same work made
 * at the provider instead of uploading and creating them again. Counted by the local service's own
 * records of every committed upload and create.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { type RunManifest, readManifest } from '../../src/run/manifest.js';
import { fileWith, tempDir } from '../helpers.js';
import { CLI, runCli } from './run-cli.js';

const root = tempDir('bp-adopt-');
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ dataDir: join(root, 'service') });
});
afterAll(() => service.close());

const connect = () => ['--provider', 'local', '--base-url', service.url, '--poll-interval', '0.1'];

function table(name: string, rows: number): string {
  return fileWith(
    root,
    `${name}.csv`,
    `id,text\n${Array.from({ length: rows }, (_, i) => `${name}-${i},review ${i} of ${name}`).join('\n')}\n`,
  );
}

function runArgs(input: string, out: string, runsDir: string): string[] {
  return [
    'run',
    input,
    '--template',
    'Classify: {{text}}',
    '--model',
    'qwen-plus',
    '--id-column',
    'id',
    '--max-lines-per-file',
    '4',
    '--out',
    out,
    '--runs-dir',
    runsDir,
    ...connect(),
  ];
}

/** Committed uploads and creates at the service whose names belong to a run of `runId`. */
async function madeFor(runId: string): Promise<{ uploads: number; creates: number }> {
  const records = await service.records();
  const hash = runId.replace(/^run-/, '');
  let uploads = 0;
  let creates = 0;
  for (const call of records.calls) {
    if (call.op === 'file.create' && call.filename?.startsWith(`${runId}-`)) uploads++;
    if (call.op === 'batch.create' && call.ds_name?.startsWith(`bp-${hash}-`)) creates++;
  }
  return { uploads, creates };
}

const onlyRun = (runs: string) => join(runs, readdirSync(runs).find((d) => d.startsWith('run-'))!);

/** The joined table without the run's own columns (none): compared whole. */
const read = (path: string) => readFileSync(path, 'utf8');

describe('the same work from another run directory', () => {
  it('adopts every batch after the run dir was deleted, from another --runs-dir and from another cwd: zero new uploads or creates, the same table', async () => {
    const input = table('same', 12);
    const first = await runCli(runArgs(input, join(root, 'same-1.csv'), join(root, 'runs-a')));
    expect(first.code, first.stderr).toBe(0);
    const runDir = onlyRun(join(root, 'runs-a'));
    const runId = (await readManifest(runDir)).run_id;
    expect(await madeFor(runId)).toEqual({ uploads: 3, creates: 3 });
    const expected = read(join(root, 'same-1.csv'));

    // The run directory deleted, the same command again.
    rmSync(join(root, 'runs-a'), { recursive: true, force: true });
    const again = await runCli(runArgs(input, join(root, 'same-2.csv'), join(root, 'runs-a')));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(
      /adopted 3 batches that an earlier run of the same work made at the provider/,
    );
    expect(again.stderr).toContain(runId);
    expect(await madeFor(runId)).toEqual({ uploads: 3, creates: 3 });
    expect(read(join(root, 'same-2.csv'))).toBe(expected);
    const manifest = await readManifest(onlyRun(join(root, 'runs-a')));
    expect(
      manifest.jobs.every((j) => j.adopted === true && j.calls.upload === 0 && j.calls.create === 0),
    ).toBe(true);

    // Another --runs-dir.
    const other = await runCli(runArgs(input, join(root, 'same-3.csv'), join(root, 'runs-b')));
    expect(other.code, other.stderr).toBe(0);
    expect(other.stderr).toMatch(/adopted 3 batches/);
    expect(await madeFor(runId)).toEqual({ uploads: 3, creates: 3 });
    expect(read(join(root, 'same-3.csv'))).toBe(expected);

    // Another working directory, with the default runs dir there.
    const cwd = join(root, 'elsewhere');
    mkdirSync(cwd, { recursive: true });
    const args = runArgs(input, join(root, 'same-4.csv'), 'unused');
    args.splice(args.indexOf('--runs-dir'), 2);
    const moved = await runCli(args, { cwd });
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stderr).toMatch(/adopted 3 batches/);
    expect(readdirSync(join(cwd, '.batchpipe', 'runs'))).toContain(runId);
    expect(await madeFor(runId)).toEqual({ uploads: 3, creates: 3 });
    expect(read(join(root, 'same-4.csv'))).toBe(expected);

    // --new-run: submitted afresh, as a run of its own.
    const fresh = await runCli([
      ...runArgs(input, join(root, 'same-5.csv'), join(root, 'runs-c')),
      '--new-run',
    ]);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stderr).not.toMatch(/adopted/);
    const freshManifest = await readManifest(onlyRun(join(root, 'runs-c')));
    expect(freshManifest.run_id).not.toBe(runId);
    expect(freshManifest.work_id).toBe(runId);
    expect(await madeFor(runId)).toEqual({ uploads: 3, creates: 3 });
    expect(await madeFor(freshManifest.run_id)).toEqual({ uploads: 3, creates: 3 });
    expect(read(join(root, 'same-5.csv'))).toBe(expected);
  }, 120_000);

  it('a run killed with SIGKILL between a create and its manifest write: a fresh run dir adopts the batch, never creates it again', async () => {
    const input = table('killed', 8);
    const runs = join(root, 'runs-killed');
    // The first create is committed, then its reply is held: the process is killed while it waits.
    service.faults.arm({ route: 'batches.create', kind: 'stall', delayMs: 60_000, times: 1 });
    const before = (await service.records()).calls.length;
    const child: ChildProcess = spawn(
      process.execPath,
      [CLI, ...runArgs(input, join(root, 'killed-1.csv'), runs)],
      {
        stdio: 'ignore',
      },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    for (let i = 0; i < 600; i++) {
      const calls = (await service.records()).calls.slice(before);
      if (calls.some((c) => c.op === 'batch.create')) break;
      await sleep(50);
    }
    child.kill('SIGKILL');
    await exited;
    service.faults.disarm();
    const stale: RunManifest = await readManifest(onlyRun(runs));
    // The kill came between the create and the manifest write: the intent is all the run dir knows.
    expect(stale.jobs.some((j) => j.state === 'creating' && j.batch_id === null)).toBe(true);
    const runId = stale.run_id;
    const created = (await madeFor(runId)).creates;
    expect(created).toBeGreaterThanOrEqual(1);

    const rerun = await runCli(runArgs(input, join(root, 'killed-2.csv'), join(root, 'runs-killed-fresh')));
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toMatch(/adopted \d+ batch/);
    const records = await service.records();
    const hash = runId.replace(/^run-/, '');
    const perName = Object.entries(records.batchesByDsName).filter(([name]) =>
      name.startsWith(`bp-${hash}-`),
    );
    expect(perName).toHaveLength(2);
    for (const [, n] of perName) expect(n).toBe(1);
    const uploads = Object.entries(records.uploadsByFilename).filter(([name]) =>
      name.startsWith(`${runId}-`),
    );
    for (const [, n] of uploads) expect(n).toBe(1);
    const out = read(join(root, 'killed-2.csv')).trim().split('\n');
    expect(out).toHaveLength(9);
    expect(out.slice(1).every((line) => line.includes(',ok,'))).toBe(true);
  }, 120_000);
});

describe('batches older than the provider lists them', () => {
  it('an earlier upload past the 30-day list window is reported unverifiable, nothing sent; --new-run submits', async () => {
    const dataDir = join(root, 'aging');
    let aging = await startLocalService({ dataDir });
    const url = () => aging.url;
    const args = (out: string, runs: string) => [
      'run',
      table('aging', 4),
      '--template',
      '{{text}}',
      '--model',
      'qwen-plus',
      '--out',
      out,
      '--runs-dir',
      runs,
      '--provider',
      'local',
      '--base-url',
      url(),
      '--poll-interval',
      '0.1',
    ];
    const input = args('', '')[1]!;
    const withInput = (out: string, runs: string) => {
      const a = args(out, runs);
      a[1] = input;
      a[a.indexOf('--base-url') + 1] = url();
      return a;
    };
    try {
      const first = await runCli(withInput(join(root, 'aging-1.csv'), join(root, 'runs-aging')));
      expect(first.code, first.stderr).toBe(0);
      const runId = (await readManifest(onlyRun(join(root, 'runs-aging')))).run_id;
      // 31 days pass at the service: a month of its scaled clock, then back to real time.
      await aging.close();
      aging = await startLocalService({ dataDir, timeScale: 31 * 86_400 });
      await sleep(1200);
      await aging.close();
      aging = await startLocalService({ dataDir });
      const creates = async () =>
        (await aging.records()).calls.filter(
          (c) => c.op === 'batch.create' && c.ds_name?.includes(runId.slice(4)),
        ).length;
      expect(await creates()).toBe(1);

      const late = await runCli(withInput(join(root, 'aging-2.csv'), join(root, 'runs-aging-2')));
      expect(late.code).toBe(1);
      expect(late.stderr).toContain('BP_RUN_UNVERIFIABLE');
      expect(late.stderr).toMatch(/longer ago than the 30 days the provider lists batches for/);
      expect(late.stderr).toContain('--new-run');
      expect(late.stderr).not.toMatch(/\n\s+at /);
      expect(await creates()).toBe(1);
      // Asked again, still refused: nothing was taken for "not found".
      const still = await runCli(withInput(join(root, 'aging-3.csv'), join(root, 'runs-aging-2')));
      expect(still.code).toBe(1);
      expect(still.stderr).toContain('BP_RUN_UNVERIFIABLE');
      expect(await creates()).toBe(1);

      const forced = await runCli([
        ...withInput(join(root, 'aging-4.csv'), join(root, 'runs-aging-3')),
        '--new-run',
      ]);
      expect(forced.code, forced.stderr).toBe(0);
      const records = await aging.records();
      expect(records.calls.filter((c) => c.op === 'batch.create')).toHaveLength(2);
    } finally {
      await aging.close();
    }
  }, 120_000);
});
