import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, it } from 'vitest';
import { fileWith, tempDir } from '../helpers.js';
import { answerLine, errorLine, seeded, shuffle } from '../support/results.js';
import { runCli } from './run-cli.js';

const dir = tempDir('bp-cli-join-');
const LABELS = 'positive,negative,neutral';

/** A table, prepared for real with --labels; the request lines, to answer. */
let source: string;
let prepared: string;
let requests: Array<{ custom_id: string }>;

beforeAll(async () => {
  source = fileWith(
    dir,
    'reviews.csv',
    'id,review\nr1,"Great, really ""great"""\nr2,"Bad.\nNever again."\nr3\nr4,Fine\nr5,Meh\nr6,Wow\n',
  );
  prepared = join(dir, 'prepared');
  const result = await runCli([
    'prepare',
    source,
    '--template',
    'Classify: {{review}}',
    '--model',
    'qwen-plus',
    '--provider',
    'dashscope',
    '--id-column',
    'id',
    '--labels',
    LABELS,
    '--out',
    prepared,
  ]);
  expect(result.code).toBe(0);
  requests = readFileSync(join(prepared, 'requests-00001.jsonl'), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
});

/** Output and error files for the prepared requests, as a hand download holds them (r6 never came back). */
function downloads(name: string): string {
  const downloaded = join(dir, name);
  mkdirSync(downloaded, { recursive: true });
  const answers: Record<string, string> = { r1: '{"label": "positive"}', r2: 'Negative', r5: 'so-so' };
  const out = requests
    .filter((r) => r.custom_id in answers)
    .map((r) => answerLine({ custom_id: r.custom_id, content: answers[r.custom_id]!, flavor: 'dashscope' }));
  writeFileSync(join(downloaded, 'output.jsonl'), `${shuffle(out, seeded(3)).join('\n')}\n`);
  writeFileSync(
    join(downloaded, 'errors.jsonl'),
    `${errorLine('r4', 'dashscope')}\n{"custom_id": "zz" oops\n`,
  );
  return downloaded;
}

const read = (path: string) =>
  parse(readFileSync(path, 'utf8'), { columns: true }) as Record<string, string>[];

describe('batchpipe join', () => {
  it('joins hand-downloaded output and error files onto the table, with prepare rejections, every row once', async () => {
    const out = join(dir, 'labeled.csv');
    const result = await runCli([
      'join',
      '--source',
      source,
      '--results',
      downloads('dl1'),
      '--results',
      prepared,
      '--id-column',
      'id',
      '--labels',
      LABELS,
      '--out',
      out,
    ]);
    expect(result.stderr).toContain('joined 6 rows -> ');
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('1 result line could not be used:');
    expect(result.stderr).toContain('errors.jsonl:2: result line is not valid JSON');
    const rows = read(out);
    expect(rows.map((r) => [r.id, r.status, r.label, r.error_code])).toEqual([
      ['r1', 'ok', 'positive', ''],
      ['r2', 'ok', 'negative', ''],
      ['', 'rejected', '', 'BP_ROW_FIELD_COUNT'],
      ['r4', 'failed', '', 'InvalidParameter'],
      ['r5', 'invalid_output', '', 'BP_OUTPUT_SCHEMA'],
      ['r6', 'missing', '', 'BP_RESULT_MISSING'],
    ]);
    expect(rows[1]!.review).toBe('Bad.\nNever again.');
    expect(Object.keys(rows[0]!)).toEqual([
      'id',
      'review',
      'status',
      'label',
      'error_code',
      'error_message',
      'prompt_tokens',
      'completion_tokens',
    ]);
  });

  it('prints the summary as JSON, writes JSONL by extension, and re-asks invalid answers from the prepared requests', async () => {
    const out = join(dir, 'labeled.jsonl');
    const reask = join(dir, 'reask.jsonl');
    const result = await runCli([
      'join',
      '--source',
      source,
      '--results',
      join(downloads('dl2'), 'output.jsonl'),
      '--errors',
      join(dir, 'dl2', 'errors.jsonl'),
      '--rejections',
      join(prepared, 'rejections.jsonl'),
      '--requests',
      prepared,
      '--id-column',
      'id',
      '--labels',
      LABELS,
      '--reask',
      reask,
      '--out',
      out,
      '--json',
    ]);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({
      rows: 6,
      statuses: { ok: 2, rejected: 1, failed: 1, invalid_output: 1, missing: 1 },
      problems: 1,
      reasked: 1,
    });
    // One engine: the summary no longer names one.
    expect(summary).not.toHaveProperty('engine');
    const lines = readFileSync(out, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.status)).toEqual([
      'ok',
      'ok',
      'rejected',
      'failed',
      'invalid_output',
      'missing',
    ]);
    expect(lines[0].prompt_tokens).toBe(20);
    const again = JSON.parse(readFileSync(reask, 'utf8'));
    expect(again.custom_id).toBe('r5');
    expect(again.body.messages.at(-2)).toEqual({ role: 'assistant', content: 'so-so' });
  });

  it('takes a JSON Schema file and writes its fields as columns', async () => {
    const schema = fileWith(
      dir,
      'schema.json',
      JSON.stringify({
        type: 'object',
        properties: { sentiment: { type: 'string', enum: ['pos', 'neg'] }, stars: { type: 'integer' } },
        required: ['sentiment', 'stars'],
      }),
    );
    const results = fileWith(
      dir,
      'schema-out.jsonl',
      [
        answerLine({ custom_id: 'row-1', content: '```json\n{"sentiment": "pos", "stars": 5}\n```' }),
        answerLine({ custom_id: 'row-2', content: '{"sentiment": "pos", "stars": "five"}' }),
      ].join('\n'),
    );
    const table = fileWith(dir, 'plain.csv', 'review\nnice\nawful\n');
    const out = join(dir, 'extracted.csv');
    const result = await runCli([
      'join',
      '--source',
      table,
      '--results',
      results,
      '--schema',
      schema,
      '--out',
      out,
    ]);
    expect(result.code).toBe(0);
    expect(read(out).map((r) => [r.status, r.sentiment, r.stars, r.error_code])).toEqual([
      ['ok', 'pos', '5', ''],
      ['invalid_output', '', '', 'BP_OUTPUT_SCHEMA'],
    ]);
  });

  it('names the vector column embedding for embedding requests, from --endpoint or the prepared directory, even when none came back', async () => {
    const table = fileWith(dir, 'to-embed.csv', 'review\nnice\nawful\n');
    const preparedEmbeddings = join(dir, 'prepared-embeddings');
    const prepare = await runCli([
      'prepare',
      table,
      '--template',
      '{{review}}',
      '--endpoint',
      '/v1/embeddings',
      '--model',
      'text-embedding-3-small',
      '--provider',
      'openai',
      '--out',
      preparedEmbeddings,
    ]);
    expect(prepare.code, prepare.stderr).toBe(0);
    const failed = fileWith(
      dir,
      'embed-errors.jsonl',
      `${errorLine('row-1', 'expired')}\n${errorLine('row-2', 'http')}\n`,
    );
    const fromDir = join(dir, 'embedded-dir.csv');
    const byDir = await runCli([
      'join',
      '--source',
      table,
      '--results',
      preparedEmbeddings,
      '--errors',
      failed,
      '--out',
      fromDir,
      '--allow-empty',
    ]);
    expect(byDir.code, byDir.stderr).toBe(0);
    const fromFlag = join(dir, 'embedded-flag.csv');
    const byFlag = await runCli([
      'join',
      '--source',
      table,
      '--results',
      failed,
      '--endpoint',
      '/v1/embeddings',
      '--out',
      fromFlag,
      '--allow-empty',
    ]);
    expect(byFlag.code, byFlag.stderr).toBe(0);
    for (const out of [fromDir, fromFlag]) {
      expect(readFileSync(out, 'utf8').split('\n')[0]).toBe(
        'review,status,embedding,error_code,error_message,prompt_tokens,completion_tokens',
      );
      expect(read(out).map((r) => r.status)).toEqual(['expired', 'failed']);
    }
    // Without either, the requests are taken for chat.
    const chat = join(dir, 'embedded-chat.csv');
    const noAnswer = await runCli(['join', '--source', table, '--results', failed, '--out', chat]);
    // No row got an answer: the table is written, and the exit code says so.
    expect(noAnswer.code).toBe(1);
    expect(noAnswer.stderr).toContain(
      'error BP_NO_ANSWERS: no row got an answer (1 failed, 1 expired); the table was written. Pass --allow-empty to accept that',
    );
    expect(Object.keys(read(chat)[0]!)).toContain('content');
  });

  it('warns when no result matches a row (the ids were made another way)', async () => {
    const results = fileWith(dir, 'other-ids.jsonl', answerLine({ custom_id: 'r1', content: 'x' }));
    const result = await runCli([
      'join',
      '--source',
      source,
      '--results',
      results,
      '--out',
      join(dir, 'none.csv'),
      '--allow-empty',
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      'warning: results for 1 custom_id matched no source row (were the requests built with --id-column?)',
    );
  });

  it('exits 2 on usage errors and 1 when the run fails', async () => {
    const results = fileWith(dir, 'r.jsonl', answerLine({ custom_id: 'row-1', content: 'x' }));
    const noOut = await runCli(['join', '--source', source, '--results', results]);
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toContain("required option '--out <table>' not specified");
    const badExt = await runCli([
      'join',
      '--source',
      source,
      '--results',
      results,
      '--out',
      join(dir, 'x.txt'),
    ]);
    expect(badExt.code).toBe(2);
    expect(badExt.stderr).toContain('error BP_USAGE: cannot tell the format of');
    const both = await runCli([
      'join',
      '--source',
      source,
      '--results',
      results,
      '--labels',
      'a',
      '--schema',
      results,
      '--out',
      join(dir, 'y.csv'),
    ]);
    expect(both.code).toBe(2);
    const noSchema = await runCli([
      'join',
      '--source',
      source,
      '--results',
      results,
      '--schema',
      join(dir, 'nope.json'),
      '--out',
      join(dir, 'y.csv'),
    ]);
    expect(noSchema.code).toBe(2);
    expect(noSchema.stderr).toContain('cannot read');
    const noSource = await runCli([
      'join',
      '--source',
      join(dir, 'missing.csv'),
      '--results',
      results,
      '--out',
      join(dir, 'z.csv'),
    ]);
    expect(noSource.code).toBe(1);
    expect(noSource.stderr).toContain('error BP_INPUT_NOT_FOUND');
    const reaskAlone = await runCli([
      'join',
      '--source',
      source,
      '--results',
      results,
      '--reask',
      join(dir, 'r.jsonl'),
      '--out',
      join(dir, 'w.csv'),
    ]);
    expect(reaskAlone.code).toBe(2);
    expect(reaskAlone.stderr).toContain('--reask needs the request files');
  });
});
