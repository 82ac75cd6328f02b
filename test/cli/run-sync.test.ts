/**
 * `batchpipe run --mode sync` and `--provider dashscope-batch-chat` from the command line: the flags,
 * the refusals (exit 2, naming the flag), labels through sync calls, --json, and the embedded local
 * service as the endpoint when no provider is set.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { fileWith, tempDir } from '../helpers.js';
import { startCli } from '../support/crash-harness.js';
import { runCli } from './run-cli.js';

const dir = tempDir('bp-run-sync-');
const env = {
  BATCHPIPE_PROVIDER: '',
  BATCHPIPE_BASE_URL: '',
  BATCHPIPE_API_KEY: '',
  DASHSCOPE_API_KEY: '',
  OPENAI_API_KEY: '',
};
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ latencyMs: 5, batchChat: { enabled: true } });
});
afterAll(() => service.close());

function input(rows: number): string {
  let text = 'id,review\n';
  for (let i = 1; i <= rows; i++) text += `r${i},"review ${i}, fine"\n`;
  return fileWith(dir, 'reviews.csv', text);
}

const batchChat = () => [
  '--provider',
  'dashscope-batch-chat',
  '--base-url',
  service.url,
  '--api-key',
  'local-key',
];

describe('batchpipe run --mode sync', () => {
  it('labels a table through Batch Chat calls and prints the outcome as JSON', async () => {
    const out = join(dir, 'labeled.csv');
    const result = await runCli(
      [
        'run',
        input(25),
        '--template',
        'Rate: {{review}}',
        '--labels',
        'good,bad',
        '--model',
        'qwen-plus',
        '--enable-thinking',
        'false',
        '--id-column',
        'id',
        '--out',
        out,
        ...batchChat(),
        '--call-timeout',
        '1800',
        '--max-in-flight',
        '4',
        '--max-qps',
        '500',
        '--json',
      ],
      { cwd: dir, env },
    );
    expect(result.code, result.stderr).toBe(0);
    const outcome = JSON.parse(result.stdout) as { state: string; run_dir: string; counts: { ok: number } };
    expect(outcome).toMatchObject({ state: 'done', counts: { rows: 25, ok: 25, pending: 0 } });
    expect(outcome.run_dir).toMatch(/sync-[0-9a-f]{16}$/);
    const table = parse(readFileSync(out, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(table.map((r) => r.id)).toEqual(Array.from({ length: 25 }, (_, i) => `r${i + 1}`));
    expect(table.every((r) => r.status === 'ok' && ['good', 'bad'].includes(r.label!))).toBe(true);
  });

  it("refuses a call timeout outside Batch Chat's 60-3600 s and a batch run with it, naming the flag (exit 2)", async () => {
    const common = [
      'run',
      input(2),
      '--template',
      'Rate: {{review}}',
      '--model',
      'qwen-plus',
      '--out',
      join(dir, 'x.csv'),
      ...batchChat(),
    ];
    const calls = service.syncTally().calls;
    const short = await runCli([...common, '--call-timeout', '30'], { cwd: dir, env });
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(
      /BP_INVALID_OPTION: --call-timeout: provider dashscope-batch-chat takes a call timeout from 60 to 3600 seconds/,
    );
    const batch = await runCli([...common, '--mode', 'batch'], { cwd: dir, env });
    expect(batch.code).toBe(2);
    expect(batch.stderr).toMatch(/--mode: provider dashscope-batch-chat has no Batch API/);
    expect(service.syncTally().calls).toBe(calls);
  });

  it('detaches on Ctrl-C (exit 3), dropping the calls in flight unanswered, and the same command goes on', async () => {
    const slow = await startLocalService({ latencyMs: 150, batchChat: { enabled: true } });
    try {
      const runs = join(dir, 'runs-interrupt');
      const out = join(dir, 'interrupt.csv');
      const args = [
        'run',
        input(120),
        '--template',
        'Rate: {{review}}',
        '--model',
        'qwen-plus',
        '--id-column',
        'id',
        '--out',
        out,
        '--provider',
        'dashscope-batch-chat',
        '--base-url',
        slow.url,
        '--api-key',
        'local-key',
        '--runs-dir',
        runs,
      ];
      const cli = startCli(args, dir);
      while (!cli.exited && Object.keys(slow.syncTally().answered).length < 20) await sleep(10);
      cli.child.kill('SIGINT');
      const { code } = await cli.closed;
      expect(code, cli.lines.join('\n')).toBe(3);
      expect(cli.lines.join('\n')).toMatch(/detaching: calls in flight are dropped/);
      while (slow.syncTally().inFlight > 0) await sleep(10);
      const before = slow.syncTally();
      const answeredBefore = Object.keys(before.answered).length;
      expect(answeredBefore).toBeLessThan(120);
      const again = await runCli(args, { cwd: dir, env });
      expect(again.code, again.stderr).toBe(0);
      const after = slow.syncTally();
      // Every row answered once: those answered before Ctrl-C were written and not sent again.
      expect(Object.values(after.answered)).toEqual(Array(120).fill(1));
      expect(after.calls - before.calls).toBe(120 - answeredBefore);
      const table = parse(readFileSync(out, 'utf8'), { columns: true }) as Array<Record<string, string>>;
      expect(table.filter((r) => r.status === 'ok')).toHaveLength(120);
    } finally {
      await slow.close();
    }
  });

  it('sends to the embedded local service when no provider is set', async () => {
    const out = join(dir, 'local.csv');
    const result = await runCli(
      [
        'run',
        input(5),
        '--template',
        'Rate: {{review}}',
        '--model',
        'qwen-plus',
        '--out',
        out,
        '--mode',
        'sync',
      ],
      { cwd: dir, env },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      /wrote 5 rows to .*: 5 ok \(run .*sync-[0-9a-f]{16}\) \[test engine: no inference\]/,
    );
  });
});
