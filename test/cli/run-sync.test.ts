/**
 * `batchpipe run --mode sync` and `--provider dashscope-batch-chat` from the command line: the flags,
 * the refusals (exit 2, naming the flag), labels through sync calls, --json, and the embedded local
 * service as the endpoint when no provider is set.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { fileWith, tempDir } from '../helpers.js';
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
