/**
 * Partitioned runs: one table split with --slice i/4 over four spawned CLI processes that share
 * nothing but one local service, as four machines started by a scheduler would. Two are killed with
 * SIGKILL mid-run and started again (one in its own run directory, one in a fresh directory as a
 * scheduler's retry on another machine would be); the service's own records then show every shard
 * uploaded once and created once, and `join` over the four run directories gives every row once, in
 * source order.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sliceOfId } from '../../src/core/rows/row-slice.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { readManifest } from '../../src/run/manifest.js';
import { fileWith, tempDir } from '../helpers.js';
import { CLI, runCli } from './run-cli.js';

const root = tempDir('bp-slices-');
const ROWS = 240;
const SLICES = 4;
let service: LocalService;

beforeAll(async () => {
  // Answers take a little while, so a batch is still running when a process is killed.
  service = await startLocalService({ dataDir: join(root, 'service'), latencyMs: 20 });
});
afterAll(() => service.close());

const ids = Array.from({ length: ROWS }, (_, i) => `r${(i * 7919) % 100_003}`);
const input = fileWith(root, 'table.csv', `id,text\n${ids.map((id, i) => `${id},review ${i}`).join('\n')}\n`);
const sliceIds = (i: number) => ids.filter((id) => sliceOfId(id, SLICES) === i);

const runDir = (i: number, name = `part-${i}`) => join(root, 'runs', name);
const partOut = (i: number) => join(root, `part-${i}.csv`);

function args(i: number, dir = runDir(i)): string[] {
  return [
    'run',
    input,
    '--template',
    'Classify: {{text}}',
    '--model',
    'qwen-plus',
    '--id-column',
    'id',
    '--slice',
    `${i}/${SLICES}`,
    '--max-lines-per-file',
    '6',
    '--out',
    partOut(i),
    '--run-dir',
    dir,
    '--provider',
    'local',
    '--base-url',
    service.url,
    '--poll-interval',
    '0.1',
    '--lookup-delay',
    '0',
  ];
}

function start(i: number): { child: ChildProcess; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, ...args(i)], { stdio: 'ignore' });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exit };
}

/** Committed creates of a slice's batches so far (its ds_names end in its tag). */
async function createsOf(i: number): Promise<number> {
  const tag = `-s${i}of${SLICES}-`;
  return (await service.records()).calls.filter((c) => c.op === 'batch.create' && c.ds_name?.includes(tag))
    .length;
}

/** The ids of a CSV table written by the CLI, in order (ids hold no commas or quotes here). */
function tableIds(path: string): Array<{ id: string; status: string }> {
  const [header, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
  const status = header!.split(',').indexOf('status');
  return lines.map((line) => {
    const cells = line.split(',');
    return { id: cells[0]!, status: cells[status]! };
  });
}

describe('a table split over four processes', () => {
  it('kills two mid-run and reruns them: every row once, nothing uploaded or created twice, the join in source order', async () => {
    const children = Array.from({ length: SLICES }, (_, i) => start(i));
    // Slice 1 is killed once its first batch is created, slice 3 after its second: mid-run, as the
    // manifests below show.
    const killAt = new Map([
      [1, 1],
      [3, 2],
    ]);
    for (const [i, after] of killAt) {
      for (let t = 0; t < 1200 && (await createsOf(i)) < after; t++) await sleep(25);
      children[i]!.child.kill('SIGKILL');
    }
    const codes = await Promise.all(children.map((c) => c.exit));
    expect(codes[0]).toBe(0);
    expect(codes[2]).toBe(0);
    for (const i of killAt.keys()) {
      expect(codes[i]).toBeNull();
      const manifest = await readManifest(runDir(i));
      expect(manifest.jobs.some((j) => j.state !== 'done')).toBe(true);
    }

    // Each slice is a run of its own, named for its slice.
    for (let i = 0; i < SLICES; i++) {
      const manifest = await readManifest(runDir(i));
      expect(manifest.slice).toEqual({ index: i, count: SLICES });
      expect(manifest.run_id).toMatch(new RegExp(`^run-[0-9a-f]{16}-s${i}of${SLICES}$`));
      expect(manifest.rows).toBe(sliceIds(i).length);
    }

    // Joined now: the killed slices are unfinished, and left out they are absent; their rows are missing.
    const early = await runCli([
      'join',
      '--source',
      input,
      '--id-column',
      'id',
      '--results',
      runDir(0),
      '--results',
      runDir(2),
      '--out',
      join(root, 'early.csv'),
    ]);
    expect(early.code, early.stderr).toBe(0);
    expect(early.stderr).toContain('2 slices of 4 not among --results (not run yet, or not given): 1/4, 3/4');
    const earlyRows = tableIds(join(root, 'early.csv'));
    expect(earlyRows.map((r) => r.id)).toEqual(ids);
    const absent = new Set([...sliceIds(1), ...sliceIds(3)]);
    expect(earlyRows.filter((r) => r.status === 'missing').map((r) => r.id)).toEqual(
      ids.filter((id) => absent.has(id)),
    );
    expect(readFileSync(join(root, 'early.csv'), 'utf8')).toMatch(
      /it is in slice [13]\/4, whose run was not among the results/,
    );

    // Given with the others, the killed slices' directories are named as unfinished.
    const partial = await runCli([
      'join',
      '--source',
      input,
      '--id-column',
      'id',
      ...[0, 1, 2, 3].flatMap((i) => ['--results', runDir(i)]),
      '--out',
      join(root, 'partial.csv'),
    ]);
    expect(partial.code, partial.stderr).toBe(0);
    for (const i of killAt.keys())
      expect(partial.stderr).toContain(`slice ${i}/4 (${runDir(i)}) has not finished`);
    for (const i of [0, 2]) expect(partial.stderr).not.toContain(`slice ${i}/4 (`);
    const partialRows = tableIds(join(root, 'partial.csv'));
    expect(partialRows.map((r) => r.id)).toEqual(ids);
    const done = new Set([...sliceIds(0), ...sliceIds(2)]);
    expect(partialRows.filter((r) => done.has(r.id)).every((r) => r.status === 'ok')).toBe(true);

    // The killed slices again: slice 1 in its own run directory, slice 3 in a fresh one (its first
    // directory lost, as on a machine that is gone): it adopts what the killed process made.
    rmSync(runDir(3), { recursive: true, force: true });
    const [again1, again3] = await Promise.all([runCli(args(1)), runCli(args(3, runDir(3, 'part-3-retry')))]);
    expect(again1.code, again1.stderr).toBe(0);
    expect(again3.code, again3.stderr).toBe(0);
    expect(again3.stderr).toMatch(/adopted \d+ batch/);

    // Nothing sent twice: each upload name and each ds_name once at the service, one per job.
    const records = await service.records();
    const uploads = Object.entries(records.uploadsByFilename);
    const creates = Object.entries(records.batchesByDsName);
    for (const [, n] of [...uploads, ...creates]) expect(n).toBe(1);
    const dirs = [runDir(0), runDir(1), runDir(2), runDir(3, 'part-3-retry')];
    const jobs = (await Promise.all(dirs.map(readManifest))).flatMap((m) => m.jobs);
    expect(creates).toHaveLength(jobs.length);
    expect(uploads).toHaveLength(jobs.length);
    for (const [name] of creates) expect(name).toMatch(/^bp-[0-9a-f]{16}-s[0-3]of4-requests-\d+-a\d+$/);
    for (const [name] of uploads)
      expect(name).toMatch(/^run-[0-9a-f]{16}-s[0-3]of4-requests-\d+-a\d+\.jsonl$/);

    // Each --out holds its slice's rows alone, in source order; together, every row once.
    for (let i = 0; i < SLICES; i++) {
      const rows = tableIds(partOut(i));
      expect(rows.map((r) => r.id)).toEqual(sliceIds(i));
      expect(rows.every((r) => r.status === 'ok')).toBe(true);
    }

    const joined = await runCli([
      'join',
      '--source',
      input,
      '--id-column',
      'id',
      ...dirs.flatMap((d) => ['--results', d]),
      '--out',
      join(root, 'all.csv'),
      '--json',
    ]);
    expect(joined.code, joined.stderr).toBe(0);
    const summary = JSON.parse(joined.stdout) as {
      rows: number;
      statuses: Record<string, number>;
      slices: { count: number; given: number[]; absent: number[] };
    };
    expect(summary.rows).toBe(ROWS);
    expect(summary.statuses.ok).toBe(ROWS);
    expect(summary.slices).toMatchObject({ count: 4, given: [0, 1, 2, 3], absent: [] });
    const all = tableIds(join(root, 'all.csv'));
    expect(all.map((r) => r.id)).toEqual(ids);
  }, 180_000);

  it("submits a prepared slice as that slice's run; refuses slices of two different splits, and an i/n out of range", async () => {
    const three = await runCli([
      'prepare',
      input,
      '--template',
      '{{text}}',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--slice',
      '0/3',
      '--out',
      join(root, 'prep-0of3'),
    ]);
    expect(three.code, three.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(root, 'prep-0of3', 'shards.json'), 'utf8')).slice).toEqual({
      index: 0,
      count: 3,
    });
    const four = await runCli([
      'prepare',
      input,
      '--template',
      '{{text}}',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--slice',
      '1/4',
      '--out',
      join(root, 'prep-1of4'),
    ]);
    expect(four.code, four.stderr).toBe(0);
    // A prepared slice submitted, then joined: the finished run is not called unfinished.
    const submitted = await runCli([
      'submit',
      join(root, 'prep-1of4'),
      '--run-dir',
      join(root, 'runs', 'submitted-1of4'),
      '--provider',
      'local',
      '--base-url',
      service.url,
      '--poll-interval',
      '0.1',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);
    expect((await readManifest(join(root, 'runs', 'submitted-1of4'))).run_id).toMatch(/-s1of4$/);
    const one = await runCli([
      'join',
      '--source',
      input,
      '--id-column',
      'id',
      '--results',
      join(root, 'runs', 'submitted-1of4'),
      '--out',
      join(root, 'one.csv'),
    ]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stderr).not.toContain('has not finished');
    expect(one.stderr).toContain('3 slices of 4 not among --results');
    const oneRows = tableIds(join(root, 'one.csv'));
    expect(oneRows.filter((r) => r.status === 'ok').map((r) => r.id)).toEqual(sliceIds(1));

    const mixed = await runCli([
      'join',
      '--source',
      input,
      '--id-column',
      'id',
      '--results',
      join(root, 'prep-0of3'),
      '--results',
      join(root, 'prep-1of4'),
      '--out',
      join(root, 'mixed.csv'),
    ]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('--results mixes slices of different splits');

    for (const bad of ['4/4', '1/0', 'x/4', '-1/4']) {
      const refused = await runCli([
        'prepare',
        input,
        '--template',
        '{{text}}',
        '--slice',
        bad,
        '--out',
        root,
      ]);
      expect(refused.code, bad).toBe(2);
      expect(refused.stderr, bad).toContain('--slice');
    }
  }, 60_000);
});
