/**
 * Issue 12, item 9: the file system's refusals are coded errors with a sentence, exit 1, no stack
 * trace, for every command that writes: an output path that is a directory or sits under a file, a
 * parent that cannot be made (a read-only file system refuses even root), a run directory removed
 * while the run goes on.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { readManifestSync } from '../../src/run/manifest.js';
import { tempDir } from '../helpers.js';
import { mountSmallDisk } from '../support/small-disk.js';
import { runCli } from './run-cli.js';

const root = tempDir('bp-out-paths-');
let service: LocalService;
let slow: LocalService;
let flags: string[];
beforeAll(async () => {
  service = await startLocalService({ dataDir: join(root, 'service'), seed: 3 });
  // Batches that take a few seconds: long enough to remove a run directory under a running run.
  slow = await startLocalService({ dataDir: join(root, 'slow'), seed: 4, latencyMs: 150, concurrency: 1 });
  flags = ['--provider', 'local', '--base-url', service.url, '--poll-interval', '0.2'];
});
afterAll(async () => {
  await service?.close();
  await slow?.close();
});

const input = join(root, 'in.csv');
writeFileSync(input, `id,text\n${Array.from({ length: 40 }, (_, i) => `${i},row ${i}\n`).join('')}`);
const prepareFlags = ['--template', 'Say: {{text}}', '--model', 'qwen-plus', '--id-column', 'id'];
const aDir = join(root, 'a-dir.csv');
const aFile = join(root, 'a-file');
mkdirSync(aDir);
writeFileSync(aFile, 'not a directory\n');

function expectRefusal(result: { code: number | null; stderr: string }, code: string, text: string) {
  expect(result.code, result.stderr).toBe(1);
  expect(result.stderr).toContain(`error ${code}: ${text}`);
  expect(
    result.stderr
      .trimEnd()
      .split('\n')
      .filter((l) => l.startsWith('error')),
  ).toHaveLength(1);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

async function batchCount(on: LocalService): Promise<number> {
  const client = new OpenAI({ baseURL: on.url, apiKey: 'local', maxRetries: 0 });
  let n = 0;
  for await (const _ of client.batches.list({ limit: 100 })) n++;
  return n;
}

const IS_DIR = 'cannot be written: it is a directory (EISDIR)';
const UNDER_FILE = 'cannot be written: a part of its path is a file, not a directory (ENOTDIR)';
const IS_FILE = 'cannot be written: it is a file, not a directory (EEXIST)';

describe('output paths the file system refuses', () => {
  let runDir: string;
  const connect = () => ['--provider', 'local', '--base-url', service.url];

  it('prepare --out: a file, or a path under a file', async () => {
    expectRefusal(
      await runCli(['prepare', input, '--out', aFile, ...prepareFlags]),
      'BP_OUTPUT_PATH',
      `${aFile}: ${IS_FILE}`,
    );
    const under = join(aFile, 'prepared');
    expectRefusal(
      await runCli(['prepare', input, '--out', under, ...prepareFlags]),
      'BP_OUTPUT_PATH',
      `${under}: ${UNDER_FILE}`,
    );
  });

  it('run --out: a directory, or under a file, refused before anything is submitted', async () => {
    const before = await batchCount(service);
    const runsDir = join(root, 'runs-refused');
    expectRefusal(
      await runCli(['run', input, ...prepareFlags, '--out', aDir, '--runs-dir', runsDir, ...flags], {
        cwd: root,
      }),
      'BP_OUTPUT_PATH',
      `${aDir}: ${IS_DIR}`,
    );
    const under = join(aFile, 'out.csv');
    expectRefusal(
      await runCli(['run', input, ...prepareFlags, '--out', under, '--runs-dir', runsDir, ...flags], {
        cwd: root,
      }),
      'BP_OUTPUT_PATH',
      `${under}: ${UNDER_FILE}`,
    );
    expect(await batchCount(service)).toBe(before);
  });

  it('run --runs-dir and --run-dir: a file, or under a file', async () => {
    const out = join(root, 'out.csv');
    const run = (...more: string[]) =>
      runCli(['run', input, ...prepareFlags, '--out', out, ...more, ...flags], { cwd: root });
    expectRefusal(await run('--runs-dir', aFile), 'BP_OUTPUT_PATH', `${aFile}: ${IS_FILE}`);
    const under = join(aFile, 'runs');
    expectRefusal(await run('--runs-dir', under), 'BP_OUTPUT_PATH', `${under}: ${UNDER_FILE}`);
    const runsDir = join(root, 'runs');
    expectRefusal(
      await run('--runs-dir', runsDir, '--run-dir', aFile),
      'BP_OUTPUT_PATH',
      `${aFile}: ${IS_FILE}`,
    );
    // The staged shards of the refused run are not left behind.
    expect(readdirSync(runsDir)).toEqual([]);
    const ok = await run('--runs-dir', runsDir);
    expect(ok.code, ok.stderr).toBe(0);
    runDir = join(runsDir, readdirSync(runsDir)[0]!);
  });

  it('join --out: a directory, or under a file', async () => {
    const joinArgs = ['join', '--source', input, '--results', runDir, '--id-column', 'id', '--out'];
    expectRefusal(await runCli([...joinArgs, aDir]), 'BP_OUTPUT_PATH', `${aDir}: ${IS_DIR}`);
    const under = join(aFile, 'joined.jsonl');
    expectRefusal(await runCli([...joinArgs, under]), 'BP_OUTPUT_PATH', `${under}: ${UNDER_FILE}`);
  });

  it('download --out: a directory, or under a file (a run, and a batch id)', async () => {
    expectRefusal(
      await runCli(['download', runDir, '--out', aDir, ...connect()]),
      'BP_OUTPUT_PATH',
      `${aDir}: ${IS_DIR}`,
    );
    const under = join(aFile, 'results.jsonl');
    expectRefusal(
      await runCli(['download', runDir, '--out', under, ...connect()]),
      'BP_OUTPUT_PATH',
      `${under}: ${UNDER_FILE}`,
    );
    const manifest = readManifestSync(runDir);
    const batch = manifest.jobs[0]!.batch_id!;
    expectRefusal(
      await runCli(['download', batch, '--out', aDir, ...connect()]),
      'BP_OUTPUT_PATH',
      `${aDir}: ${IS_DIR}`,
    );
    expectRefusal(
      await runCli(['download', batch, '--out', under, ...connect()]),
      'BP_OUTPUT_PATH',
      `${under}: ${UNDER_FILE}`,
    );
  });

  it('a run directory removed mid-run: BP_RUN_DIR_GONE naming it and the batches it had created', async () => {
    const dir = join(root, 'doomed-run');
    const slowFlags = ['--provider', 'local', '--base-url', slow.url, '--poll-interval', '0.2'];
    const args = [
      'run',
      input,
      ...prepareFlags,
      '--max-lines-per-file',
      '10',
      '--out',
      join(root, 'doomed.csv'),
    ];
    const running = runCli([...args, '--run-dir', dir, ...slowFlags], { cwd: root });
    let batches: string[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      try {
        const manifest = readManifestSync(dir);
        batches = manifest.jobs.flatMap((j) => (j.batch_id ? [j.batch_id] : []));
      } catch {
        // Not written yet, or being replaced.
      }
      if (batches.length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(batches.length).toBeGreaterThan(0);
    // Gone at once (a recursive remove races with the run's own writes), then removed for good.
    renameSync(dir, `${dir}.removed`);
    rmSync(`${dir}.removed`, { recursive: true, force: true, maxRetries: 20, retryDelay: 5 });
    const result = await running;
    expectRefusal(
      result,
      'BP_RUN_DIR_GONE',
      `the run directory ${dir} was removed while the run was in progress`,
    );
    for (const id of batches) expect(result.stderr).toContain(id);
    // Nothing made the run directory again (a half run with no shards would be worse than none).
    expect(existsSync(dir)).toBe(false);
  });
});

const disk = mountSmallDisk(1024 * 1024);
if (typeof disk === 'string') console.warn(`skipped the read-only file system tests: ${disk}`);
afterAll(() => {
  if (typeof disk !== 'string') disk.unmount();
});

describe.skipIf(typeof disk === 'string')('a parent that cannot be made (a read-only file system)', () => {
  const small = disk as Exclude<typeof disk, string>;
  beforeAll(() => small.readOnly(true));
  afterAll(() => small.readOnly(false));
  const ROFS = 'cannot be written: the file system is read-only (EROFS)';

  it('prepare, join, run and download name the directory they could not make', async () => {
    const missing = join(small.dir, 'new', 'deeper');
    expectRefusal(
      await runCli(['prepare', input, '--out', missing, ...prepareFlags]),
      'BP_OUTPUT_PATH',
      `${missing}: ${ROFS}`,
    );
    const table = join(missing, 'out.csv');
    const runsDir = join(root, 'runs');
    const runDir = join(runsDir, readdirSync(runsDir)[0]!);
    expectRefusal(
      await runCli(['join', '--source', input, '--results', runDir, '--id-column', 'id', '--out', table]),
      'BP_OUTPUT_PATH',
      `${table}: ${ROFS}`,
    );
    expectRefusal(
      await runCli(['run', input, ...prepareFlags, '--out', table, '--runs-dir', runsDir, ...flags], {
        cwd: root,
      }),
      'BP_OUTPUT_PATH',
      `${table}: ${ROFS}`,
    );
    expectRefusal(
      await runCli(
        ['run', input, ...prepareFlags, '--out', join(root, 'x.csv'), '--runs-dir', missing, ...flags],
        {
          cwd: root,
        },
      ),
      'BP_OUTPUT_PATH',
      `${missing}: ${ROFS}`,
    );
    expectRefusal(
      await runCli(['download', runDir, '--out', table, '--provider', 'local', '--base-url', service.url]),
      'BP_OUTPUT_PATH',
      `${table}: ${ROFS}`,
    );
  });
});
