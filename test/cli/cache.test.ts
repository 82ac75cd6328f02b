/**
 * The result cache from the command line: `run` twice on a growing table with the same runs dir
 * (the embedded local service), `--include cached`, `--no-cache`, `--dedup`, and `cache stats|prune`.
 */
import { readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { readManifest, writeManifest } from '../../src/run/manifest.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';
import { runCli } from './run-cli.js';

const dir = tempDir('bp-cli-cache-');
const runsDir = join(dir, 'runs');

function table(name: string, n: number, repeat = n): string {
  return fileWith(
    dir,
    name,
    csvText(
      ['id', 'text'],
      Array.from({ length: n }, (_, i) => [`k${i}`, `text ${i % repeat}`]),
    ),
  );
}

function readOut(path: string): Array<Record<string, string>> {
  return parse(readFileSync(path, 'utf8'), { columns: true }) as Array<Record<string, string>>;
}

function run(input: string, out: string, ...extra: string[]) {
  return runCli([
    'run',
    input,
    '--out',
    out,
    '--template',
    'Say: {{text}}',
    '--model',
    'qwen-plus',
    '--id-column',
    'id',
    '--temperature',
    '0',
    '--runs-dir',
    runsDir,
    '--poll-interval',
    '0.05',
    '--json',
    ...extra,
  ]);
}

describe('batchpipe run with the result cache', () => {
  it('sends only the new rows the second time, marks cached answers, and cache stats|prune manage it', async () => {
    const first = await run(table('t20.csv', 20), join(dir, 'o20.csv'));
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ stored: 20, reuse: { sent: 20, cached: 0 } });

    const out = join(dir, 'o25.csv');
    const second = await run(table('t25.csv', 25), out, '--include', 'cached');
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ stored: 5, reuse: { sent: 5, cached: 20 } });
    const rows = readOut(out);
    expect(rows.map((r) => r.cached)).toEqual([...Array(20).fill('true'), ...Array(5).fill('false')]);
    expect(rows.every((r) => r.status === 'ok')).toBe(true);

    const bypass = await run(table('t25.csv', 25), join(dir, 'o25b.csv'), '--no-cache', '--new-run');
    expect(bypass.code, bypass.stderr).toBe(0);
    expect(JSON.parse(bypass.stdout)).toMatchObject({
      stored: 0,
      reuse: { sent: 25, cached: 0, cache: false },
    });

    const stats = await runCli(['cache', 'stats', '--runs-dir', runsDir, '--json']);
    expect(stats.code, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ entries: 25, segments: 2 });
    const human = await runCli(['cache', 'stats', '--runs-dir', runsDir]);
    expect(human.stderr).toMatch(/25 answers in 2 segments/);

    const pruned = await runCli(['cache', 'prune', '--runs-dir', runsDir, '--all', '--json']);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(JSON.parse(pruned.stdout)).toMatchObject({
      removed: { entries: 25, segments: 2 },
      left: { entries: 0 },
    });
    const bad = await runCli(['cache', 'prune', '--runs-dir', runsDir, '--older-than', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--older-than');
  });

  it('will not send again the keyed work of an unfinished run an earlier version made (another key, another run id)', async () => {
    const runs = join(dir, 'runs-upgrade');
    const input = table('t8.csv', 8);
    const first = await run(input, join(dir, 'o8.csv'), '--runs-dir', runs, '--no-cache');
    expect(first.code, first.stderr).toBe(0);
    const made = readdirSync(runs).find((name) => name.startsWith('run-'))!;
    const manifest = await readManifest(join(runs, made));
    expect(manifest.request_keys).toBe('xxh3-128');
    // As an earlier version left it: keys of another format (no request_keys, another run id), and
    // a batch still running.
    delete manifest.request_keys;
    manifest.jobs[0]!.state = 'submitted';
    await writeManifest(join(runs, made), manifest);
    const earlier = join(runs, 'run-0123456789abcdef');
    renameSync(join(runs, made), earlier);

    const again = await run(input, join(dir, 'o8b.csv'), '--runs-dir', runs, '--no-cache');
    expect(again.code, again.stderr).toBe(1);
    expect(again.stderr).toContain(`${earlier} holds an unfinished run of 8 rows made by an earlier version`);
    expect(again.stderr).toContain(`batchpipe resume ${earlier}`);
    expect(readdirSync(runs).filter((name) => name.startsWith('run-'))).toEqual(['run-0123456789abcdef']);

    const fresh = await run(input, join(dir, 'o8c.csv'), '--runs-dir', runs, '--no-cache', '--new-run');
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(JSON.parse(fresh.stdout)).toMatchObject({ state: 'done', reuse: { sent: 8 } });
  });

  it('sends identical requests once, and says what --dedup would save where they are not the same draw', async () => {
    const input = table('rep.csv', 12, 4);
    const same = await run(input, join(dir, 'rep0.csv'), '--no-cache');
    expect(same.code, same.stderr).toBe(0);
    expect(JSON.parse(same.stdout)).toMatchObject({ reuse: { sent: 4, duplicates: 8 }, fanned_out: 8 });

    const warm = await runCli([
      'run',
      input,
      '--out',
      join(dir, 'rep1.csv'),
      '--template',
      'Say: {{text}}',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--temperature',
      '0.8',
      '--runs-dir',
      runsDir,
      '--poll-interval',
      '0.05',
    ]);
    expect(warm.code, warm.stderr).toBe(0);
    expect(warm.stderr).toContain('8 requests repeated another of this run');
    expect(warm.stderr).toContain('--dedup would have sent them once');
  });
});
