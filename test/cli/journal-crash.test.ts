/**
 * docs/runs.md, "The manifest: a snapshot and its journal": `batchpipe submit` killed with SIGKILL at
 * journal boundaries (right after its n-th manifest write is on disk, a journal append or a snapshot,
 * `BATCHPIPE_KILL_AFTER_SAVES=n`, n swept over each spawn), resumed each time, once with half a line
 * appended to the journal as a write cut short would leave it. After every kill the manifest reads
 * and the service's records show no file uploaded twice and no batch created twice; at the end every
 * row is back once.
 */
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepare } from '../../src/jobs/prepare.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { readManifestSync } from '../../src/run/manifest.js';
import { fileWith, tempDir } from '../helpers.js';
import { runCli } from './run-cli.js';

const ROWS = 60;
const root = tempDir('bp-journal-');
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({
    dataDir: join(root, 'service'),
    seed: 7,
    latencyMs: 5,
    // Retryable failures make later attempts: a finished job and its retry are saved in one write.
    failRate: 0.1,
    failCodes: ['server_error'],
    quotas: { enabled: false },
  });
});
afterAll(() => service.close());

describe('a submit killed with SIGKILL right after manifest writes', () => {
  it('reads after every kill, creates nothing twice and brings every row back once', {
    timeout: 240_000,
  }, async () => {
    const ids = Array.from({ length: ROWS }, (_, i) => `j${i + 1}`);
    const csv = fileWith(root, 'table.csv', `id,text\n${ids.map((id, i) => `${id},text ${i}`).join('\n')}\n`);
    const prep = join(root, 'prep');
    await prepare(csv, {
      outDir: prep,
      model: 'qwen-plus',
      template: '{{text}}',
      idColumn: 'id',
      maxLinesPerFile: 5,
    });
    const runDir = join(root, 'run');
    const args = [
      'submit',
      prep,
      '--run-dir',
      runDir,
      '--provider',
      'local',
      '--base-url',
      service.url,
      '--poll-interval',
      '0.1',
      '--lookup-delay',
      '0.2',
    ];
    let kills = 0;
    let torn = false;
    for (let spawn = 0; ; spawn++) {
      expect(spawn, 'spawns before the run finished').toBeLessThan(120);
      // Writes 1, 2, ... 9 in turn: the first is a snapshot, the rest mostly journal appends.
      const n = (spawn % 9) + 1;
      const last = spawn >= 100;
      const result = await runCli(args, { env: last ? {} : { BATCHPIPE_KILL_AFTER_SAVES: String(n) } });
      if (result.code === 0) break;
      expect(result.code, result.stderr).toBeNull();
      kills++;
      // The run directory reads after every kill, and nothing was sent twice.
      const manifest = readManifestSync(runDir);
      const records = await service.records();
      expect(Object.entries(records.uploadsByFilename).filter(([, c]) => c > 1)).toEqual([]);
      expect(Object.entries(records.batchesByDsName).filter(([, c]) => c > 1)).toEqual([]);
      // Once: a write cut short mid-line, as a crash or a full disk leaves it, is left out on reading.
      if (!torn && manifest.journal !== undefined && manifest.jobs.some((j) => j.state === 'submitted')) {
        const journal = readdirSync(runDir).find((f) => f === `manifest.journal-${manifest.journal}.jsonl`);
        if (journal) {
          appendFileSync(join(runDir, journal), '{"job":{"id":"requests-00001-a1","state":"do');
          torn = true;
          expect(readManifestSync(runDir).jobs).toEqual(manifest.jobs);
        }
      }
    }
    expect(kills).toBeGreaterThanOrEqual(20);
    expect(torn).toBe(true);

    const manifest = readManifestSync(runDir);
    expect(manifest.jobs.every((j) => j.state === 'done')).toBe(true);
    expect(manifest.jobs.some((j) => j.attempt > 1)).toBe(true);
    const records = await service.records();
    for (const job of manifest.jobs) {
      expect(records.uploadsByFilename[job.file_name], job.file_name).toBe(1);
      expect(records.batchesByDsName[job.ds_name], job.ds_name).toBe(1);
    }
    const download = await runCli(['download', runDir, '--provider', 'local', '--base-url', service.url]);
    expect(download.code, download.stderr).toBe(0);
    const results = readFileSync(join(runDir, 'results.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
    expect(results.sort()).toEqual([...ids].sort());
  });
});
