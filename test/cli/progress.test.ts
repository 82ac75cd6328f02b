/**
 * What a person and a script see while a run goes: live bars under a pseudo-terminal (util-linux
 * `script`, so stderr is a real TTY), one plain line per state change in a pipe, JSON Lines events on
 * stderr with `--progress json` (beside the `--json` outcome on stdout), nothing with `--quiet`. The
 * spawned CLI runs against a local service whose requests take 15 ms each, two at a time, so a batch
 * of 200 stays in progress across many polls.
 */

import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalService } from '../../src/local/index.js';
import { readManifestSync } from '../../src/run/manifest.js';
import { tempDir } from '../helpers.js';
import { CLI, runCli } from './run-cli.js';

const dir = tempDir('bp-progress-');
const input = join(import.meta.dirname, '../../examples/reviews.csv');
let service: Awaited<ReturnType<typeof startLocalService>>;
let n = 0;

beforeAll(async () => {
  service = await startLocalService({ dataDir: join(dir, 'service'), latencyMs: 15, concurrency: 2 });
});
afterAll(() => service.close());

/** A fresh run of the example table (its own out and runs dir), with `more` flags. */
function runArgs(...more: string[]): { args: string[]; out: string; runsDir: string } {
  const out = join(dir, `out-${++n}.csv`);
  const runsDir = join(dir, `runs-${n}`);
  const args = [
    'run',
    input,
    '--template',
    `Classify (${n}): {{review}}`,
    '--labels',
    'positive,negative,neutral',
    '--model',
    'qwen-plus',
    '--id-column',
    'id',
    '--out',
    out,
    '--runs-dir',
    runsDir,
    '--provider',
    'local',
    '--base-url',
    service.url,
    '--poll-interval',
    '0.1',
    ...more,
  ];
  return { args, out, runsDir };
}

/** How many times the run polled its batch (the manifest counts every call). */
function polls(runsDir: string): number {
  const [run] = readdirSync(runsDir).filter((d) => d.startsWith('run-'));
  // With its journal: the snapshot alone holds the jobs as they were when it was written.
  const manifest = readManifestSync(join(runsDir, run!));
  return manifest.jobs.reduce((sum, j) => sum + j.calls.poll, 0);
}

describe('progress', () => {
  it('off a terminal: one line per state change (a status, or another tenth done), not one per poll', async () => {
    const { args, runsDir } = runArgs();
    const { code, stderr } = await runCli(args);
    expect(code, stderr).toBe(0);
    const status = stderr.split('\n').filter((l) => /^batch_\S+ \(requests-00001-a1\): /.test(l));
    const made = polls(runsDir);
    // Many polls saw the counts move; far fewer lines were printed.
    expect(made).toBeGreaterThan(status.length + 5);
    // No two lines say the same status and the same tenth.
    const keys = status.map((l) => {
      const [, state, done, total] = /: (\w+), (\d+)\/(\d+) done/.exec(l)!;
      return `${state} ${Number(total) ? Math.floor((10 * Number(done)) / Number(total)) : 0}`;
    });
    expect(new Set(keys).size).toBe(keys.length);
    expect(status.at(-1)).toMatch(/: completed, 200\/200 done, 0 failed$/);
    expect(stderr).toMatch(/^uploaded requests-00001-a1 as \S+$/m);
    expect(stderr).toMatch(/^wrote 200 rows to /m);
    expect(stderr).not.toContain('\x1b[');
  });

  it('on a terminal: live bars for rows prepared, shards uploaded, requests per batch with ETA, rows joined', async () => {
    const { args } = runArgs();
    const command = [process.execPath, CLI, ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
    const transcript = await new Promise<{ code: number | null; text: string }>((resolve, reject) => {
      const child = spawn('script', ['-qfec', command, '/dev/null'], {
        env: {
          ...process.env,
          TERM: 'xterm',
          DASHSCOPE_API_KEY: '',
          OPENAI_API_KEY: '',
          BATCHPIPE_API_KEY: '',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d));
      child.stderr.on('data', (d: Buffer) => (text += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, text }));
    });
    expect(transcript.code, transcript.text).toBe(0);
    const text = transcript.text;
    // Drawn in place: cursor moves and line clears, the cursor hidden while drawing and shown after.
    expect(text).toContain('\x1b[?25l');
    expect(text).toContain('\x1b[?25h');
    expect(text).toContain('\x1b[0K');
    expect(text).toMatch(/rows prepared +200/);
    expect(text).toMatch(/shards uploaded +\|[█░]+\| 1\/1 100%/);
    expect(text).toMatch(/requests-00001-a1 in_progress +\|[█░]+\| +\d+\/200 +\d+% ETA (\d+s|-)/);
    expect(text).toMatch(/requests-00001-a1 completed +\|█+\| 200\/200 100%/);
    expect(text).toMatch(/rows joined +\|█+\| 200\/200 100%/);
    // Off the bars: the summary comes after them, as a plain line.
    const summary = text.lastIndexOf('wrote 200 rows to ');
    expect(summary).toBeGreaterThan(text.lastIndexOf('rows joined'));
    // The poll lines of a pipe are not printed beside the bars.
    expect(text).not.toMatch(/\(requests-00001-a1\): in_progress, /);
  });

  it('--progress json: JSON Lines events on stderr, the --json outcome alone on stdout', async () => {
    const { args, out } = runArgs('--progress', 'json', '--json');
    const { code, stdout, stderr } = await runCli(args);
    expect(code, stderr).toBe(0);
    const outcome = JSON.parse(stdout);
    expect(outcome).toMatchObject({ state: 'done', out, statuses: { ok: 200 } });
    const events = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; time: string } & Record<string, unknown>);
    for (const e of events) expect(Number.isNaN(Date.parse(e.time))).toBe(false);
    const types = events.map((e) => e.type);
    expect(types).toEqual(
      expect.arrayContaining(['log', 'rows', 'uploaded', 'created', 'status', 'finished']),
    );
    expect(events.find((e) => e.type === 'log')!.message).toMatch(/test engine/);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'rows', stage: 'prepare', rows: 200, final: true }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'uploaded', job: 'requests-00001-a1', uploaded: 1, jobs: 1 }),
    );
    expect(events.at(-1)).toMatchObject({ type: 'rows', stage: 'join', rows: 200, total: 200, final: true });
    // Every poll that saw a change is an event (a script decides what to show).
    const status = events.filter((e) => e.type === 'status');
    expect(status.at(-1)).toMatchObject({ status: 'completed', completed: 200, total: 200 });
  });

  it('--progress json without --json: the summary lines are log events too (stderr is JSON Lines only)', async () => {
    const { args } = runArgs('--progress', 'json');
    const { code, stdout, stderr } = await runCli(args);
    expect(code, stderr).toBe(0);
    expect(stdout).toBe('');
    const events = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'log', message: expect.stringMatching(/^wrote 200 rows to /) }),
    );
  });

  it('--quiet prints nothing; --progress none keeps the summary without progress lines', async () => {
    const quiet = await runCli(runArgs('--quiet').args);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
    const none = await runCli(runArgs('--progress', 'none').args);
    expect(none.code).toBe(0);
    expect(none.stderr).not.toMatch(/^(uploaded|created|batch_)/m);
    expect(none.stderr).toMatch(/^wrote 200 rows to /m);
  });

  it('--progress takes only its modes', async () => {
    const { code, stderr } = await runCli(runArgs('--progress', 'fancy').args);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--progress.*fancy|fancy.*--progress/);
  });
});
