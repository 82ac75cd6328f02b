import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { readManifest } from '../../src/run/manifest.js';
import { prepare } from '../../src/run/prepare.js';
import { random } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';
import { CLI, runCli } from './run-cli.js';

const root = tempDir('bp-crash-');
let service: LocalService;

beforeAll(async () => {
  // The service lives in the test process: killing the CLI must not take the provider with it.
  service = await startLocalService({
    timeScale: 36_000,
    latencyMs: 3,
    concurrency: 4,
    dataDir: join(root, 'service'),
  });
});
afterAll(() => service.close());

function spawnCli(args: string[]): { child: ChildProcess; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
  return { child, exit: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

describe('a run killed with SIGKILL at random moments', () => {
  it('uploads and creates every batch exactly once and brings every row back exactly once', async () => {
    const rows = 800;
    const csv = fileWith(
      root,
      'table.csv',
      `id,text\n${Array.from({ length: rows }, (_, i) => `k${i + 1},text number ${i + 1}`).join('\n')}\n`,
    );
    const prep = join(root, 'prep');
    await prepare(csv, {
      outDir: prep,
      model: 'qwen-plus',
      template: '{{text}}',
      idColumn: 'id',
      maxLinesPerFile: 20,
    });
    const runs = join(root, 'runs');
    const args = [
      'submit',
      prep,
      '--provider',
      'local',
      '--base-url',
      service.url,
      '--runs-dir',
      runs,
      '--poll-interval',
      '0.05',
      '--concurrency',
      '3',
      '--quiet',
    ];

    const next = random(20261124);
    const seen = new Set<string>();
    let kills = 0;
    let finished = false;
    for (let round = 0; round < 25 && !finished; round++) {
      const { child, exit } = spawnCli(args);
      const delay = 200 + Math.floor(next() * 800);
      const code = await Promise.race([
        exit,
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), delay)),
      ]);
      if (code === 'timeout') {
        child.kill('SIGKILL');
        await exit;
        kills++;
        // A kill can land before the run dir exists, or between its creation and its first manifest.
        const runDir = existsSync(runs) ? readdirSync(runs).find((d) => d.startsWith('run-')) : undefined;
        const manifest = runDir ? await readManifest(join(runs, runDir)).catch(() => undefined) : undefined;
        for (const job of manifest?.jobs ?? []) seen.add(job.state);
      } else {
        expect(code).toBe(0);
        finished = true;
      }
    }
    if (!finished) expect((await runCli(args)).code).toBe(0);
    expect(kills).toBeGreaterThanOrEqual(3);
    // Kills landed before submission and while batches ran (states seen in the manifest after a kill).
    expect(seen.has('pending') || seen.has('uploading') || seen.has('uploaded') || seen.has('creating')).toBe(
      true,
    );
    expect(seen.has('submitted') || seen.has('done')).toBe(true);

    const runDir = findRun(runs);
    const manifest = await readManifest(runDir);
    expect(manifest.jobs.every((j) => j.state === 'done')).toBe(true);
    const records = await service.records();
    for (const job of manifest.jobs) {
      expect(records.uploadsByFilename[job.file_name], job.file_name).toBe(1);
      expect(records.batchesByDsName[job.ds_name], job.ds_name).toBe(1);
    }
    const ours = records.calls.filter(
      (c) => c.op === 'batch.create' && c.ds_name?.startsWith(`bp-${manifest.run_id.replace(/^run-/, '')}`),
    );
    expect(ours).toHaveLength(manifest.jobs.length);

    const download = await runCli(['download', runDir, '--provider', 'local', '--base-url', service.url]);
    expect(download.code).toBe(0);
    const ids = readFileSync(join(runDir, 'results.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).custom_id as string);
    expect(ids.sort()).toEqual(Array.from({ length: rows }, (_, i) => `k${i + 1}`).sort());
  });
});

function findRun(runs: string): string {
  const dirs = readdirSync(runs).filter((d) => d.startsWith('run-'));
  expect(dirs).toHaveLength(1);
  return join(runs, dirs[0]!);
}
