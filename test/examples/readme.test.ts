/**
 * README.md runs as written. Every fenced block is classified by its language: `ts`/`js` blocks are
 * scripts, run unedited with tsx in a temp directory where 'batchpipe' resolves to this package's build;
 * `sh` blocks are commands, run one by one in that directory through bash, on the embedded local
 * service (no provider key is set), with only the placeholder run directory `.batchpipe/runs/run-3f0c...`
 * replaced by the run the commands before made; `text` blocks are output and diagrams. A block of any
 * other kind, or a command indented outside a fence, fails the test, so the README cannot drift.
 *
 * The files the README names are there: `reviews.csv` is examples/reviews.csv with a `sentiment`
 * column of gold labels (from the rating), `my-requests.jsonl` a request file written by hand.
 * No README command needs a provider key; one that did would run with the key set to a dummy and
 * `--base-url` at a local service (see PROVIDER_KEY below: the test refuses one it was not told about).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const dir = tempDir('bp-readme-all-');

/** No provider key or address: commands and scripts use the embedded local service. */
const env: NodeJS.ProcessEnv = {
  ...process.env,
  DASHSCOPE_API_KEY: '',
  OPENAI_API_KEY: '',
  BATCHPIPE_API_KEY: '',
  BATCHPIPE_PROVIDER: '',
  BATCHPIPE_BASE_URL: '',
  NO_COLOR: '1',
};

const PLACEHOLDER_RUN = '.batchpipe/runs/run-3f0c...';
const PROVIDER_KEY = /\b(DASHSCOPE|OPENAI|BATCHPIPE)_API_KEY=/;

/**
 * The set-up block's commands act on the repository clone, not on a user's directory: CI runs
 * `npm ci` and `npm test` itself (.ci/run), and `npm run example` runs in its own test below.
 */
const REPOSITORY_COMMANDS = new Set(['npm ci && npm run example', 'npm test']);

type Block = { lang: string; body: string; line: number };

function blocks(text: string): Block[] {
  const found: Block[] = [];
  const fence = /^```([\w-]*)\n([\s\S]*?)^```$/gm;
  for (const m of text.matchAll(fence))
    found.push({ lang: m[1]!, body: m[2]!, line: text.slice(0, m.index).split('\n').length });
  return found;
}

/** A sh block's commands: `\` continues a line; comments and blank lines are not commands. */
function commands(body: string): string[] {
  return body
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** The command without its trailing comment, for the tables below. */
function bare(command: string): string {
  return command.replace(/\s+#.*$/, '').trim();
}

function sh(command: string, cwd = dir): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { cwd, env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** A long-running command (`serve`): started in its own process group, stopped by SIGTERM to the group. */
async function serveOnce(command: string): Promise<{ url: string; answered: number; out: string }> {
  const child: ChildProcess = spawn('bash', ['-c', command], { cwd: dir, env, detached: true });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = () => {
      const m = /^(http:\/\/\S+\/v1)$/m.exec(out);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.on('close', () => reject(new Error(`serve ended before listening:\n${out}`)));
  });
  const answered = (await fetch(`${url}/batches`)).status;
  process.kill(-child.pid!, 'SIGTERM');
  await closed;
  return { url, answered, out };
}

function setUp(): void {
  mkdirSync(join(dir, 'node_modules/.bin'), { recursive: true });
  // A user's ESM project (the README's scripts use top-level await).
  writeFileSync(join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
  // 'batchpipe' resolves to this package (its dist/ build), as after `npm install batchpipe`.
  symlinkSync(root, join(dir, 'node_modules/batchpipe'));
  symlinkSync(join(root, 'node_modules/tsx'), join(dir, 'node_modules/tsx'));
  symlinkSync(join(root, 'dist/cli/main.js'), join(dir, 'node_modules/.bin/batchpipe'));
  const rows = parse(readFileSync(join(root, 'examples/reviews.csv')), { columns: true }) as Record<
    string,
    string
  >[];
  const gold = (stars: number) => (stars >= 4 ? 'positive' : stars <= 2 ? 'negative' : 'neutral');
  writeFileSync(
    join(dir, 'reviews.csv'),
    stringify(
      rows.map((r) => ({ ...r, sentiment: gold(Number(r.rating)) })),
      { header: true },
    ),
  );
  const request = (id: string, text: string) =>
    JSON.stringify({
      custom_id: id,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'qwen-plus', messages: [{ role: 'user', content: text }] },
    });
  writeFileSync(
    join(dir, 'my-requests.jsonl'),
    `${[request('a', 'Classify: great'), request('b', 'Classify: awful')].join('\n')}\n`,
  );
}

function csvRows(file: string): Record<string, string>[] {
  return parse(readFileSync(join(dir, file)), { columns: true }) as Record<string, string>[];
}

/** What a block must leave behind, keyed by a string the block holds (each must be found). */
const SCRIPT_CHECKS: Record<string, () => void> = {
  "csvSink('labeled.csv')": () => {
    const rows = csvRows('labeled.csv');
    expect(rows).toHaveLength(200);
    expect(rows.every((r) => r.status === 'ok' && ['positive', 'negative'].includes(r.label!))).toBe(true);
  },
  "shardRequests({ outDir: 'prep-mapper'": () => {
    const first = JSON.parse(
      readFileSync(join(dir, 'prep-mapper/requests-00001.jsonl'), 'utf8').split('\n')[0]!,
    );
    expect(first.body).toMatchObject({ model: 'qwen3.5-plus', enable_thinking: false, max_tokens: 2 });
  },
};

describe('README.md', () => {
  beforeAll(setUp);

  it('has every code block fenced with a language this test knows', () => {
    const kinds = new Set(blocks(readme).map((b) => b.lang));
    expect([...kinds].filter((k) => !['ts', 'js', 'sh', 'text'].includes(k))).toEqual([]);
    // A command in an indented block would escape the test.
    expect(readme.split('\n').filter((l) => /^ {4}(npx|npm|batchpipe) /.test(l))).toEqual([]);
  });

  it('runs every ts/js block and every shell command, in order, on the local service', async () => {
    let run: string | undefined;
    const ran: string[] = [];
    const checked = new Set<string>();
    let scripts = 0;
    for (const block of blocks(readme)) {
      if (block.lang === 'ts' || block.lang === 'js') {
        const file = join(dir, `readme-${block.line}.${block.lang}`);
        writeFileSync(file, block.body);
        const { code, out } = await sh(`node --import tsx ${file}`);
        expect({ line: block.line, code }, out).toEqual({ line: block.line, code: 0 });
        expect(out).not.toMatch(/Error|warning/);
        for (const [marker, check] of Object.entries(SCRIPT_CHECKS))
          if (block.body.includes(marker)) {
            check();
            checked.add(marker);
          }
        scripts++;
        continue;
      }
      if (block.lang !== 'sh') continue;
      for (const written of commands(block.body)) {
        expect(written, `README line ${block.line}: a command needing a provider key`).not.toMatch(
          PROVIDER_KEY,
        );
        if (REPOSITORY_COMMANDS.has(bare(written))) continue;
        let command = written;
        if (command.includes(PLACEHOLDER_RUN)) {
          expect(run, `no run made before README line ${block.line}`).toBeDefined();
          command = command.replaceAll(PLACEHOLDER_RUN, run!);
        }
        if (/^npx batchpipe serve\b/.test(command)) {
          const served = await serveOnce(command);
          expect(served.answered).toBe(200);
          // The group's SIGTERM ends bash by the signal; the service itself says it stopped cleanly.
          expect(served.out).toMatch(/^stopped$/m);
          ran.push(bare(written));
          continue;
        }
        const { code, out } = await sh(command);
        expect({ command, code, out }).toMatchObject({ command, code: 0 });
        ran.push(bare(written));
        // The run a command made or went on with: "(run <dir>)" or "run run-... (<dir>):".
        const made = /\(run (\S+?)\)|^run run-\S+ \((\S+?)\):/m.exec(out);
        if (made) run = made[1] ?? made[2];
      }
    }
    expect(scripts).toBeGreaterThanOrEqual(4);
    expect(checked).toEqual(new Set(Object.keys(SCRIPT_CHECKS)));
    // The commands the README teaches are all among those run.
    for (const name of [
      'run',
      'prepare',
      'validate',
      'submit',
      'status',
      'resume',
      'download',
      'join',
      'list',
      'cancel',
      'serve',
      'eval',
    ])
      expect(
        ran.some((c) => c.startsWith(`npx batchpipe ${name} `)),
        name,
      ).toBe(true);
    // eval wrote its report against the gold column.
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('sentiment');
    expect(existsSync(join(dir, 'labeled.csv'))).toBe(true);
  }, 180_000);

  it('runs docs/progress.md as written: its command (JSON Lines events, the outcome) and its notebook script', async () => {
    const doc = readFileSync(join(root, 'docs/progress.md'), 'utf8');
    const found = blocks(doc);
    const script = found.filter((b) => b.lang === 'ts');
    const shell = found.filter((b) => b.lang === 'sh');
    expect(script).toHaveLength(1);
    expect(shell).toHaveLength(1);
    const file = join(dir, 'progress-line.ts');
    writeFileSync(file, script[0]!.body);
    const ran = await sh(`node --import tsx ${file}`);
    expect(ran.code, ran.out).toBe(0);
    // The line is rewritten in place through every stage, then the summary.
    const updates = ran.out.split('\r').map((l) => l.trim());
    expect(updates).toContain('prepared 200 rows');
    expect(updates).toContain('uploaded 1 of 1 files');
    expect(updates.some((l) => /^requests-00001-a1: completed, 200 of 200 requests$/.test(l))).toBe(true);
    expect(ran.out).toMatch(/joined 200 of 200 rows\s*\ndone: 200 rows in labeled\.csv\n$/);
    // The command, with the package's bin on PATH as after `npm install batchpipe`.
    const [command] = commands(shell[0]!.body);
    const { code, out } = await sh(`PATH="${join(dir, 'node_modules/.bin')}:$PATH"; ${command}`);
    expect(code, out).toBe(0);
    const events = readFileSync(join(dir, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.at(-1)).toMatchObject({ type: 'rows', stage: 'join', rows: 200, final: true });
    expect(JSON.parse(readFileSync(join(dir, 'outcome.json'), 'utf8'))).toMatchObject({ state: 'done' });
  }, 60_000);

  it("`npm run example` writes the example's labelled table", async () => {
    const { code, out } = await sh('npm run example', root);
    expect(code, out).toBe(0);
    const rows = parse(readFileSync(join(root, '.batchpipe/example/labeled.csv')), {
      columns: true,
    }) as Record<string, string>[];
    expect(rows).toHaveLength(200);
    expect(out).toContain('[test engine: no inference]');
  }, 60_000);
});
