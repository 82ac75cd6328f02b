import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { prepare } from '../../src/jobs/prepare.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { type RunManifest, readManifest, writeManifest } from '../../src/run/manifest.js';
import { LOCK_FILE } from '../../src/run/run-lock.js';
import { createOrResumeRun, readPrepared } from '../../src/run/start-run.js';
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
afterEach(() => {
  slow.faults.disarm();
});

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
    // Exit 3: detached, not done; `run ... && next-step` must not carry on.
    expect(await exited).toBe(3);
    expect(stderr).toContain('detaching');
    const runDir = onlyRun(runs);
    expect(stderr).toContain(`detached: resume with \`batchpipe resume ${runDir}\``);
    const resumed = await runCli(['resume', runDir, ...connect(), '--poll-interval', '0.1']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain('done: 8 rows: 8 ok');
    const records = await slow.records();
    for (const job of (await readManifest(runDir)).jobs) {
      expect(records.uploadsByFilename[job.file_name]).toBe(1);
      expect(records.batchesByDsName[job.ds_name]).toBe(1);
    }
  });

  it('run detached by SIGTERM exits 3 without writing --out; the same command then finishes it (exit 0)', async () => {
    const table = fileWith(
      root,
      'sigterm.csv',
      `id,t\n${Array.from({ length: 8 }, (_, i) => `${i},text ${i}`).join('\n')}\n`,
    );
    const out = join(root, 'sigterm-out.csv');
    const runs = join(root, 'runs-sigterm');
    const args = [
      'run',
      table,
      '--template',
      '{{t}}',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--out',
      out,
    ];
    const cli = spawnCli([...args, ...connect(), '--runs-dir', runs, '--poll-interval', '0.1']);
    await cli.saw('created');
    cli.child.kill('SIGTERM');
    expect(await cli.exit).toBe(3);
    const runDir = onlyRun(runs);
    expect(cli.output().stderr).toContain(`detached: resume with \`batchpipe resume ${runDir}\``);
    expect(existsSync(out)).toBe(false);

    const again = await runCli([...args, ...connect(), '--runs-dir', runs, '--poll-interval', '0.1']);
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(out, 'utf8').trimEnd().split('\n')).toHaveLength(9);
    await expectEachOnce(await readManifest(runDir));
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

/** A run made (manifest written, nothing sent) in this process, then let go: for commands to pick up. */
async function pendingRun(prep: string, runs: string): Promise<string> {
  const connection = resolveConnection({ provider: 'local', baseURL: slow.url });
  const run = await createOrResumeRun(prep, await readPrepared(prep), connection, { runsDir: runs }, false);
  await run.close();
  return run.dir;
}

/** Spawns the CLI; `saw(text)` resolves once its stderr has shown `text`. */
function spawnCli(args: string[]) {
  const child: ChildProcess = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d;
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d;
    for (const w of waiters.splice(0)) {
      if (stderr.includes(w.text)) w.resolve();
      else waiters.push(w);
    }
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return {
    child,
    exit,
    output: () => ({ stdout, stderr }),
    saw: (text: string) =>
      new Promise<void>((resolve) => {
        if (stderr.includes(text)) resolve();
        else waiters.push({ text, resolve });
      }),
  };
}

async function expectEachOnce(manifest: RunManifest): Promise<void> {
  const records = await slow.records();
  for (const job of manifest.jobs) {
    expect(records.uploadsByFilename[job.file_name], job.file_name).toBe(1);
    expect(records.batchesByDsName[job.ds_name], job.ds_name).toBe(1);
  }
}

const poll = ['--poll-interval', '0.1'];

describe('one process at a time per run', () => {
  it('two resumes at once: one works, the other stops with BP_RUN_LOCKED (bug: both uploaded and created, one crashed on .partial)', async () => {
    const runDir = await pendingRun(await prepared_(12, 6), join(root, 'runs-two'));
    const [a, b] = await Promise.all([
      runCli(['resume', runDir, ...connect(), ...poll]),
      runCli(['resume', runDir, ...connect(), ...poll]),
    ]);
    const codes = [a.code, b.code].sort();
    expect(codes).toEqual([0, 1]);
    const loser = a.code === 1 ? a : b;
    expect(loser.stderr).toMatch(/error BP_RUN_LOCKED: .* is in use by process \d+ on /);
    expect((a.code === 0 ? a : b).stderr).toContain('done: 12 rows: 12 ok');
    await expectEachOnce(await readManifest(runDir));
    expect(existsSync(join(runDir, LOCK_FILE))).toBe(false);
  });

  it('status shows the saved run while another process works on it; cancel and download are refused', async () => {
    const runDir = await pendingRun(await prepared_(160, 160), join(root, 'runs-busy'));
    const worker = spawnCli(['resume', runDir, ...connect(), ...poll]);
    await worker.saw('created');
    const status = await runCli(['status', runDir, ...connect(), '--json']);
    expect(status.code).toBe(0);
    expect(status.stderr).toContain('BP_RUN_LOCKED');
    expect(JSON.parse(status.stdout).counts.rows).toBe(160);
    for (const command of ['cancel', 'download']) {
      const refused = await runCli([command, runDir, ...connect()]);
      expect(refused.code, command).toBe(1);
      expect(refused.stderr, command).toContain('error BP_RUN_LOCKED');
    }
    expect(await worker.exit).toBe(0);
    expect(worker.output().stderr).toContain('done: 160 rows: 160 ok');
  });

  it('a lock left by a process killed with SIGKILL is taken over by the next command, which says so', async () => {
    const runDir = await pendingRun(await prepared_(40, 20), join(root, 'runs-killed'));
    const victim = spawnCli(['resume', runDir, ...connect(), ...poll]);
    await victim.saw('created');
    victim.child.kill('SIGKILL');
    await victim.exit;
    expect(existsSync(join(runDir, LOCK_FILE))).toBe(true);
    const resumed = await runCli(['resume', runDir, ...connect(), ...poll]);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/took over the lock of .* from process \d+ .* which is no longer running/);
    expect(resumed.stderr).toContain('done: 40 rows: 40 ok');
    await expectEachOnce(await readManifest(runDir));
  });
});

describe('runs that stop short', () => {
  it('Ctrl-C during a create detaches with exit 3 (bug: it exited 1 with "Request was aborted"); resume adopts the batch', async () => {
    const prep = await prepared_(4, 4);
    const runs = join(root, 'runs-sigint-create');
    // The create lands at the service; its reply is held long after Ctrl-C.
    slow.faults.arm({ route: 'batches.create', kind: 'stall', delayMs: 5_000, times: 1 });
    const cli = spawnCli(['submit', prep, ...connect(), '--runs-dir', runs, ...poll]);
    await cli.saw('uploaded');
    await new Promise((resolve) => setTimeout(resolve, 300));
    cli.child.kill('SIGINT');
    expect(await cli.exit).toBe(3);
    const { stderr } = cli.output();
    expect(stderr).toContain('detaching');
    expect(stderr).not.toContain('error');
    const runDir = onlyRun(runs);
    expect((await readManifest(runDir)).jobs[0]!.state).toBe('creating');

    const resumed = await runCli(['resume', runDir, ...connect(), ...poll]);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain('done: 4 rows: 4 ok');
    await expectEachOnce(await readManifest(runDir));
  });

  it('a resume right after a SIGKILL waits for the create the dead process sent, and adopts it (bug: an immediate lookup missed a create the provider was still committing, and created it again)', async () => {
    const prep = await prepared_(4, 4);
    const runs = join(root, 'runs-late-create');
    // The provider acts on the create 2 s after its body arrived, whether or not the client is still there.
    slow.faults.arm({ route: 'batches.create', kind: 'late', delayMs: 2_000, times: 1 });
    const victim = spawnCli(['submit', prep, ...connect(), '--runs-dir', runs, ...poll]);
    await victim.saw('uploaded');
    const runDir = onlyRun(runs);
    while ((await readManifest(runDir)).jobs[0]!.state !== 'creating')
      await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 200));
    victim.child.kill('SIGKILL');
    await victim.exit;
    expect((await slow.records()).batchesByDsName[(await readManifest(runDir)).jobs[0]!.ds_name]).toBe(
      undefined,
    );

    const resumed = await runCli(['resume', runDir, ...connect(), ...poll, '--lookup-delay', '4']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/waiting \ds before looking for the last call of requests-00001-a1/);
    expect(resumed.stderr).toContain('done: 4 rows: 4 ok');
    await expectEachOnce(await readManifest(runDir));
  });

  it('a batch reported stuck is collected once it ends (bug: a stuck batch was never polled again)', async () => {
    // 80 requests at 100 ms, 2 at a time: four seconds of work.
    const prep = await prepared_(80, 80);
    const runs = join(root, 'runs-stuck');
    expect((await runCli(['submit', prep, ...connect(), '--runs-dir', runs, '--no-wait'])).code).toBe(0);
    const runDir = onlyRun(runs);
    // As if the batch had been submitted 30 hours ago: well past its 24h window and the 2h grace.
    const manifest = await readManifest(runDir);
    manifest.jobs[0]!.submitted_at = new Date(Date.now() - 30 * 3_600_000).toISOString();
    // As a new snapshot: the journal of the one read would replay the job's old record over the edit.
    await writeManifest(runDir, manifest);

    const stuck = await runCli(['resume', runDir, ...connect(), ...poll]);
    expect(stuck.code).toBe(1);
    expect(stuck.stderr).toMatch(/is still (validating|in_progress) well past its completion window/);
    expect(stuck.stderr).toContain(': stuck: 80 rows');

    const client = new OpenAI({ baseURL: slow.url, apiKey: 'local' });
    const batchId = (await readManifest(runDir)).jobs[0]!.batch_id!;
    while ((await client.batches.retrieve(batchId)).status !== 'completed')
      await new Promise((resolve) => setTimeout(resolve, 200));

    const status = await runCli(['status', runDir, ...connect(), '--json']);
    expect(status.code).toBe(0);
    const report = JSON.parse(status.stdout);
    expect(report.state).toBe('done');
    expect(report.counts).toMatchObject({ ok: 80, pending: 0 });
    expect(report.jobs[0].note).toBeNull();
  });

  it('cancel settles shards never sent as cancelled, and resume never sends them (bug: resume created a batch for a cancelled run)', async () => {
    const prep = await prepared_(30, 10);
    const runs = join(root, 'runs-cancel-unsent');
    // The second upload is refused for good: its shard is left with its upload intent.
    slow.faults.arm({ route: 'files.create', kind: 'error', status: 400, after: 1, times: 1 });
    const submitted = await runCli([
      'submit',
      prep,
      ...connect(),
      '--runs-dir',
      runs,
      '--no-wait',
      '--concurrency',
      '1',
    ]);
    expect(submitted.code).toBe(1);
    expect(submitted.stderr).toContain(
      'error BP_PROVIDER_HTTP: upload for requests-00002-a1 failed: HTTP 400',
    );
    const runDir = onlyRun(runs);
    const before = await readManifest(runDir);
    expect(before.jobs.map((j) => j.state)).toEqual(['submitted', 'uploading', 'submitted']);

    expect((await runCli(['cancel', runDir, ...connect()])).code).toBe(0);
    const resumed = await runCli(['resume', runDir, ...connect(), ...poll, '--json']);
    expect(resumed.code).toBe(0);
    const { counts } = JSON.parse(resumed.stdout);
    expect(counts.cancelled).toBeGreaterThanOrEqual(10);
    expect(counts.ok + counts.cancelled + counts.failed).toBe(30);

    const after = await readManifest(runDir);
    expect(after.cancelled_at).toEqual(expect.any(String));
    expect(after.jobs).toHaveLength(3);
    expect(after.jobs[1]).toMatchObject({ state: 'done', status: 'cancelled', batch_id: null });
    const records = await slow.records();
    expect(records.uploadsByFilename[after.jobs[1]!.file_name]).toBeUndefined();
    expect(records.batchesByDsName[after.jobs[1]!.ds_name]).toBeUndefined();
    const download = await runCli(['download', runDir, ...connect(), '--out', join(root, 'cancelled.jsonl')]);
    expect(download.code).toBe(0);
    const lines = readFileSync(join(root, 'cancelled.jsonl'), 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(30);
    const cancelled = lines.map((l) => JSON.parse(l)).filter((l) => l.error?.code === 'batch_cancelled');
    expect(cancelled.length).toBeGreaterThanOrEqual(10);
  });

  it('cancel looks up a create whose reply was lost, and cancels the batch it finds there', async () => {
    const prep = await prepared_(200, 200);
    const runs = join(root, 'runs-cancel-creating');
    slow.faults.arm([
      { route: 'batches.create', kind: 'lose', times: 1 },
      // After the new run's one look for an earlier run's batches: the lost create's lookup fails.
      { route: 'batches.list', kind: 'error', status: 503, retryAfterMs: 5, after: 1 },
    ]);
    const submitted = await runCli(['submit', prep, ...connect(), '--runs-dir', runs, '--no-wait']);
    expect(submitted.code).toBe(1);
    expect(submitted.stderr).toContain('error BP_LOOKUP_FAILED');
    const runDir = onlyRun(runs);
    const job = (await readManifest(runDir)).jobs[0]!;
    expect(job.state).toBe('creating');
    slow.faults.disarm();

    expect((await runCli(['cancel', runDir, ...connect()])).code).toBe(0);
    const records = await slow.records();
    const created = records.calls.find((c) => c.op === 'batch.create' && c.ds_name === job.ds_name)!;
    expect(records.calls.some((c) => c.op === 'batch.cancel' && c.id === created.id)).toBe(true);
    const resumed = await runCli(['resume', runDir, ...connect(), ...poll, '--json']);
    expect(resumed.code).toBe(0);
    const { counts, jobs } = JSON.parse(resumed.stdout);
    expect(jobs.map((j: { batch_id: string; status: string }) => [j.batch_id, j.status])).toEqual([
      [created.id, 'cancelled'],
    ]);
    expect(counts.cancelled).toBeGreaterThan(0);
    expect(counts.ok + counts.cancelled).toBe(200);
    expect((await slow.records()).batchesByDsName[job.ds_name]).toBe(1);
  });
});

describe('options of a resumed run', () => {
  it('says which options given to resume differ from the run, and which hold (bug: they were ignored silently)', async () => {
    const prep = await prepared_(6, 6);
    const runs = join(root, 'runs-options');
    const submitted = await runCli([
      'submit',
      prep,
      ...connect(),
      '--runs-dir',
      runs,
      '--no-wait',
      '--max-attempts',
      '5',
    ]);
    expect(submitted.code).toBe(0);
    const runDir = onlyRun(runs);
    expect((await readManifest(runDir)).options.max_attempts).toBe(5);

    const resumed = await runCli([
      'resume',
      runDir,
      ...connect(),
      ...poll,
      '--max-attempts',
      '2',
      '--no-resubmit-expired',
      '--delete-output-files',
      '--completion-window',
      '48h',
      '--json',
    ]);
    expect(resumed.code).toBe(0);
    const warnings = resumed.stderr.split('\n').filter((l) => l.startsWith('warning:'));
    expect(warnings).toEqual([
      'warning: --max-attempts 2 holds for this run from now on (it began with --max-attempts 5)',
      'warning: --no-resubmit-expired holds for this run from now on (it began with --resubmit-expired)',
      'warning: --delete-output-files holds for this run from now on (it began with --no-delete-output-files)',
      'warning: --completion-window 48h is ignored: the run keeps --completion-window 24h, the value its batches were created with (a new value is a new run)',
    ]);
    const manifest = await readManifest(runDir);
    expect(manifest.options).toEqual({
      max_attempts: 2,
      resubmit_expired: false,
      delete_input_files: false,
      delete_output_files: true,
    });
    expect(manifest.completion_window).toBe('24h');

    const again = await runCli(['status', runDir, ...connect()]);
    expect(again.code).toBe(0);
    expect(again.stderr).not.toContain('warning:');
    const same = await runCli(['resume', runDir, ...connect(), '--max-attempts', '2']);
    expect(same.stderr).not.toContain('warning:');
  });
});

describe('expired batches', () => {
  it('--no-resubmit-expired keeps what an expiry left unrun as expired, and sends nothing again', async () => {
    // 24h of service time is 0.24 s here; 20 ms a request makes a 60-request batch outlive it.
    const expiring = await startLocalService({ timeScale: 360_000, latencyMs: 20, concurrency: 2 });
    try {
      const prep = await prepared_(60, 60);
      const result = await runCli([
        'submit',
        prep,
        '--provider',
        'local',
        '--base-url',
        expiring.url,
        '--runs-dir',
        join(root, 'runs-expired'),
        '--poll-interval',
        '0.05',
        '--no-resubmit-expired',
        '--json',
      ]);
      expect(result.code).toBe(0);
      const { counts, jobs } = JSON.parse(result.stdout);
      expect(jobs).toHaveLength(1);
      expect(jobs[0].status).toBe('expired');
      expect(counts.expired).toBeGreaterThan(0);
      expect(counts.ok + counts.expired).toBe(60);
      expect(counts.failed).toBe(0);
    } finally {
      await expiring.close();
    }
  });
});
