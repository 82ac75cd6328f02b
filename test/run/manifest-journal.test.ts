import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { newJob } from '../../src/run/batch-run.js';
import { journalFile, type RunManifest, readManifest, writeManifest } from '../../src/run/manifest.js';
import { ManifestJournal } from '../../src/run/manifest-journal.js';
import { tempDir } from '../helpers.js';

function manifestOf(jobs: number): RunManifest {
  return {
    version: 1,
    run_id: 'run-test',
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
    provider: { name: 'local', base_url: null },
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    options: {
      max_attempts: 3,
      resubmit_expired: true,
      delete_input_files: false,
      delete_output_files: false,
    },
    rows: jobs,
    rejected: 0,
    shards: [],
    jobs: Array.from({ length: jobs }, (_, i) =>
      newJob('run-test', {
        id: `s${i}-a1`,
        shard: `s${i}.jsonl`,
        attempt: 1,
        input: `s${i}.jsonl`,
        lines: 1,
        bytes: 10,
        sha256: 'x',
        model: 'qwen-plus',
        endpoint: '/v1/chat/completions',
      }),
    ),
  };
}

describe('ManifestJournal', () => {
  it('appends one line per saved job, whatever the number of jobs, and reads back the same state', async () => {
    for (const jobs of [10, 5000]) {
      const dir = tempDir('bp-journal-');
      const manifest = manifestOf(jobs);
      await writeManifest(dir, manifest);
      const journal = new ManifestJournal(dir, manifest);
      // The first save of a process is a snapshot (it ends a journal that may be torn).
      await journal.saveJob(manifest.jobs[0]!);
      const snapshotBytes = statSync(join(dir, 'manifest.json')).size;
      const path = join(dir, journalFile(manifest.journal!));
      const job = manifest.jobs[jobs - 1]!;
      job.state = 'uploading';
      await journal.saveJob(job);
      const line = `${JSON.stringify({ job })}\n`;
      // What a step writes is the job's line, not the manifest (which grows with the jobs).
      expect(statSync(path).size).toBe(Buffer.byteLength(line));
      expect(statSync(join(dir, 'manifest.json')).size).toBe(snapshotBytes);
      job.state = 'uploaded';
      job.input_file_id = 'file-1';
      await journal.saveJob(job);
      expect(readFileSync(path, 'utf8').split('\n')).toHaveLength(3);
      await journal.close();
      const read = await readManifest(dir);
      expect(read.jobs).toEqual(manifest.jobs);
    }
  });

  it('saves jobs saved together in one write, and a new job (a retry attempt) is added on reading', async () => {
    const dir = tempDir('bp-journal-');
    const manifest = manifestOf(3);
    await writeManifest(dir, manifest);
    const journal = new ManifestJournal(dir, manifest);
    await journal.saveAll();
    const writes: number[] = [];
    const counting = new ManifestJournal(dir, manifest, (lines) => writes.push(lines));
    await counting.saveAll();
    const retry = { ...manifest.jobs[0]!, id: 's0-a2', attempt: 2 };
    manifest.jobs.push(retry);
    manifest.jobs[0]!.state = 'done';
    await Promise.all([counting.saveJob(retry), counting.saveJob(manifest.jobs[0]!)]);
    expect(writes).toEqual([0, 2]);
    await counting.close();
    await journal.close();
    expect((await readManifest(dir)).jobs.map((j) => `${j.id} ${j.state}`)).toEqual([
      's0-a1 done',
      's1-a1 pending',
      's2-a1 pending',
      's0-a2 pending',
    ]);
  });

  it('compacts: past twice the jobs (at least 1,000 lines) the manifest is written whole and the journal starts again', async () => {
    const dir = tempDir('bp-journal-');
    const manifest = manifestOf(4);
    await writeManifest(dir, manifest);
    const snapshots: number[] = [];
    const journal = new ManifestJournal(dir, manifest, (lines) => {
      if (lines === 0) snapshots.push(manifest.journal!);
    });
    for (let i = 0; i < 2500; i++) {
      manifest.jobs[i % 4]!.calls.poll = i;
      await journal.saveJob(manifest.jobs[i % 4]!);
    }
    await journal.close();
    // The first save, then every 1,000 lines.
    expect(snapshots).toHaveLength(3);
    // Only the current generation's journal is left, and it holds what came after the last snapshot.
    const journals = readdirSync(dir).filter((f) => f.startsWith('manifest.journal-'));
    expect(journals).toEqual([journalFile(manifest.journal!)]);
    expect(readFileSync(join(dir, journals[0]!), 'utf8').trimEnd().split('\n').length).toBeLessThanOrEqual(
      1000,
    );
    expect((await readManifest(dir)).jobs.map((j) => j.calls.poll)).toEqual([2496, 2497, 2498, 2499]);
  });

  it("never replays a journal of another generation (left by a crash during a snapshot's write)", async () => {
    const dir = tempDir('bp-journal-');
    const manifest = manifestOf(2);
    await writeManifest(dir, manifest);
    const stale = { ...manifest.jobs[0]!, state: 'uploading' as const };
    writeFileSync(join(dir, journalFile(manifest.journal! - 1)), `${JSON.stringify({ job: stale })}\n`);
    writeFileSync(join(dir, journalFile(manifest.journal! + 1)), `${JSON.stringify({ job: stale })}\n`);
    expect((await readManifest(dir)).jobs[0]!.state).toBe('pending');
  });

  it('a damaged line before the last is BP_MANIFEST_CORRUPT naming the journal and line; a torn last line is left out', async () => {
    const dir = tempDir('bp-journal-');
    const manifest = manifestOf(2);
    await writeManifest(dir, manifest);
    const path = join(dir, journalFile(manifest.journal!));
    const good = `${JSON.stringify({ job: { ...manifest.jobs[1]!, state: 'uploading' } })}\n`;
    writeFileSync(path, `${good}{"job":{"id":"s0-a1","sta`);
    expect((await readManifest(dir)).jobs[1]!.state).toBe('uploading');
    writeFileSync(path, `{"job":{"id":"s0-a1","sta\n${good}`);
    await expect(readManifest(dir)).rejects.toMatchObject({
      code: 'BP_MANIFEST_CORRUPT',
      message: expect.stringContaining(`${path} cannot be read as a run manifest: line 1:`),
    });
  });
});
