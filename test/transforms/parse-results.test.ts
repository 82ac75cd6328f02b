import { describe, expect, it } from 'vitest';
import { ResultParser, type ResultRecord } from '../../src/core/results/result-parser.js';
import { BatchpipeError } from '../../src/errors.js';
import { jsonlSource } from '../../src/sources/jsonl-source.js';
import { resultSource } from '../../src/sources/result-source.js';
import { parseResults } from '../../src/transforms/parse-results.js';
import { chunked, collect, fileWith, tempDir, through } from '../helpers.js';
import { answerLine, embeddingLine, errorLine } from '../support/results.js';

const dir = tempDir('bp-parse-results-');
const parser = () => new ResultParser({ badLines: 'report' });
const one = (line: string) => parser().fromText(line, 'out.jsonl', 1);

// OpenAI's documented output line (ref/openai-batch-openapi.yaml, BatchRequestOutput example).
const OPENAI_EXAMPLE =
  '{"id": "batch_req_wnaDys", "custom_id": "request-2", "response": {"status_code": 200, "request_id": "req_c187b3", "body": {"id": "chatcmpl-9758Iw", "object": "chat.completion", "created": 1711475054, "model": "gpt-4o-mini", "choices": [{"index": 0, "message": {"role": "assistant", "content": "2 + 2 equals 4."}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 24, "completion_tokens": 15, "total_tokens": 39}, "system_fingerprint": null}}, "error": null}';
// DashScope's documented output line (ref/dashscope-batch-api.txt): no request_id, no error.
const DASHSCOPE_EXAMPLE =
  '{"id": "batch_req_xxx", "custom_id": "req-1", "response": {"status_code": 200, "body": {"choices": [{"message": {"content": "..."}}], "usage": {}}}}';

describe('parseResults: the documented shapes', () => {
  it("reads OpenAI's documented output line into every field", () => {
    expect(one(OPENAI_EXAMPLE)).toEqual({
      kind: 'result',
      custom_id: 'request-2',
      status: 'ok',
      content: '2 + 2 equals 4.',
      reasoning_content: null,
      parsed: null,
      embedding: null,
      finish_reason: 'stop',
      prompt_tokens: 24,
      completion_tokens: 15,
      reasoning_tokens: null,
      model: 'gpt-4o-mini',
      request_id: 'req_c187b3',
      status_code: 200,
      cached: false,
      error_code: null,
      error_message: null,
      file: 'out.jsonl',
      line: 1,
    });
  });

  it("reads DashScope's documented line, which leaves out request_id, error, finish_reason and usage", () => {
    expect(one(DASHSCOPE_EXAMPLE)).toMatchObject({
      custom_id: 'req-1',
      status: 'ok',
      content: '...',
      request_id: null,
      finish_reason: null,
      prompt_tokens: null,
      error_code: null,
    });
  });

  it('keeps thinking text and reasoning tokens (DashScope reasoning_content, vLLM reasoning)', () => {
    const dashscope = answerLine({
      custom_id: 'a',
      content: 'yes',
      flavor: 'dashscope',
      reasoning: 'let me think',
      reasoning_tokens: 12,
    });
    expect(one(dashscope)).toMatchObject({
      reasoning_content: 'let me think',
      reasoning_tokens: 12,
      model: 'qwen-plus',
    });
    const vllm = answerLine({ custom_id: 'b', content: 'no', flavor: 'vllm', reasoning: 'hmm' });
    expect(one(vllm)).toMatchObject({
      status: 'ok',
      content: 'no',
      reasoning_content: 'hmm',
      request_id: 'vllm-batch-0',
    });
  });

  it('marks an answer cut at max_tokens as truncated, a filtered or refused one as failed', () => {
    expect(
      one(answerLine({ custom_id: 'a', content: 'The answer is', finish_reason: 'length' })),
    ).toMatchObject({
      status: 'truncated',
      finish_reason: 'length',
      content: 'The answer is',
    });
    expect(one(answerLine({ custom_id: 'a', content: null, finish_reason: 'content_filter' }))).toMatchObject(
      {
        status: 'failed',
        error_code: 'BP_OUTPUT_FILTERED',
      },
    );
    const refused = JSON.parse(answerLine({ custom_id: 'r', content: null }));
    refused.response.body.choices[0].message.refusal = "I can't help with that.";
    expect(one(JSON.stringify(refused))).toMatchObject({
      status: 'failed',
      error_code: 'BP_OUTPUT_REFUSED',
      error_message: "I can't help with that.",
    });
  });

  it('reads message content given as a list of text parts, and /v1/completions text', () => {
    const parts = JSON.parse(answerLine({ custom_id: 'p', content: null }));
    parts.response.body.choices[0].message.content = [
      { type: 'text', text: 'one ' },
      { type: 'text', text: 'two' },
    ];
    expect(one(JSON.stringify(parts))?.content).toBe('one two');
    const completion = JSON.parse(answerLine({ custom_id: 'c', content: null }));
    completion.response.body.choices[0] = { index: 0, text: 'plain', finish_reason: 'stop' };
    expect(one(JSON.stringify(completion))).toMatchObject({ status: 'ok', content: 'plain' });
  });

  it('reads /v1/responses bodies: output text, reasoning summary, usage, incomplete as truncated', () => {
    const body = {
      status: 'completed',
      model: 'gpt-4.1',
      output: [
        { type: 'reasoning', summary: [{ type: 'summary_text', text: 'thought' }] },
        { type: 'message', content: [{ type: 'output_text', text: 'Paris' }] },
      ],
      usage: { input_tokens: 9, output_tokens: 4, output_tokens_details: { reasoning_tokens: 3 } },
    };
    const line = (b: object) =>
      JSON.stringify({ custom_id: 'x', response: { status_code: 200, body: b }, error: null });
    expect(one(line(body))).toMatchObject({
      status: 'ok',
      content: 'Paris',
      reasoning_content: 'thought',
      prompt_tokens: 9,
      completion_tokens: 4,
      reasoning_tokens: 3,
      finish_reason: 'stop',
    });
    const cut = { ...body, status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } };
    expect(one(line(cut))).toMatchObject({ status: 'truncated', finish_reason: 'length' });
  });

  it('reads embeddings as vectors: lists, base64 float32, several inputs in index order', () => {
    expect(one(embeddingLine('e', [0.25, -1, 3.5]))).toMatchObject({
      status: 'ok',
      embedding: [0.25, -1, 3.5],
      content: null,
      prompt_tokens: 5,
    });
    const floats = Buffer.alloc(8);
    floats.writeFloatLE(0.5, 0);
    floats.writeFloatLE(-2, 4);
    const base64 = JSON.parse(embeddingLine('b', []));
    base64.response.body.data[0].embedding = floats.toString('base64');
    expect(one(JSON.stringify(base64))?.embedding).toEqual([0.5, -2]);
    const many = JSON.parse(embeddingLine('m', []));
    many.response.body.data = [
      { index: 1, embedding: [2] },
      { index: 0, embedding: [1] },
    ];
    expect(one(JSON.stringify(many))?.embedding).toEqual([[1], [2]]);
  });
});

describe('parseResults: error lines', () => {
  it('tells expired and cancelled requests from failed ones by code (OpenAI batch_expired, batch_cancelled)', () => {
    expect(one(errorLine('a', 'expired'))).toMatchObject({ status: 'expired', error_code: 'batch_expired' });
    expect(one(errorLine('a', 'cancelled'))).toMatchObject({
      status: 'cancelled',
      error_code: 'batch_cancelled',
    });
  });

  it('reads an HTTP error in response.body.error, keeping status code and request id', () => {
    expect(one(errorLine('a', 'http', 3))).toMatchObject({
      status: 'failed',
      status_code: 400,
      request_id: 'req_3',
      error_code: 'invalid_value',
      error_message: 'Invalid value for messages',
    });
  });

  it('takes error as a string (vLLM), a top-level {code, message} (DashScope error file) or a string body', () => {
    expect(one(errorLine('a', 'string'))).toMatchObject({
      status: 'failed',
      status_code: 400,
      error_code: 'http_400',
      error_message: 'The model `nope` does not exist.',
    });
    expect(one(errorLine('a', 'dashscope'))).toMatchObject({
      status: 'failed',
      error_code: 'InvalidParameter',
      error_message: 'Range of input length should be [1, 30720]',
    });
    expect(one(errorLine('a', 'body-string'))).toMatchObject({
      status: 'failed',
      error_code: 'http_500',
      error_message: 'upstream timed out',
    });
  });

  it("reads DashScope's native error body {code, message} under a non-2xx status", () => {
    const line = JSON.stringify({
      custom_id: 'd',
      response: { status_code: 429, body: { code: 'Throttling', message: 'Requests rate limit exceeded' } },
    });
    expect(one(line)).toMatchObject({ status: 'failed', error_code: 'Throttling', status_code: 429 });
  });

  it('treats error: null, {} and "" as no error, and a status code given as text as a number', () => {
    for (const error of [null, {}, '']) {
      const line = JSON.parse(OPENAI_EXAMPLE);
      line.error = error;
      line.response.status_code = '200';
      expect(one(JSON.stringify(line))).toMatchObject({ status: 'ok', status_code: 200 });
    }
  });
});

describe('an error object with only null fields', () => {
  it('no longer marks a good answer failed ({"code": null, "message": null}, at the top or in the body)', () => {
    for (const error of [
      { code: null, message: null },
      { code: null, message: '', param: null, type: null },
      { code: null, details: {} },
    ]) {
      const top = JSON.parse(OPENAI_EXAMPLE);
      top.error = error;
      expect(one(JSON.stringify(top)), JSON.stringify(error)).toMatchObject({
        status: 'ok',
        content: '2 + 2 equals 4.',
        error_code: null,
        error_message: null,
      });
      const inBody = JSON.parse(OPENAI_EXAMPLE);
      inBody.response.body.error = error;
      expect(one(JSON.stringify(inBody))).toMatchObject({ status: 'ok', error_code: null });
    }
    // One field that says something is an error.
    const coded = JSON.parse(OPENAI_EXAMPLE);
    coded.error = { code: 'server_error', message: null };
    expect(one(JSON.stringify(coded))).toMatchObject({ status: 'failed', error_code: 'server_error' });
    const worded = JSON.parse(OPENAI_EXAMPLE);
    worded.error = { code: null, message: 'overloaded' };
    expect(one(JSON.stringify(worded))).toMatchObject({ status: 'failed', error_message: 'overloaded' });
  });
});

describe('parseResults: a line read as JSON.parse reads it', () => {
  // Compact lines put the custom_id first or after "id"; they are parsed with it padded (so V8 does not
  // intern it), which must never show: every field, and every error message, as JSON.parse gives them.
  const compact = (line: string) => JSON.stringify(JSON.parse(line));
  const plainParser = () => new ResultParser({ badLines: 'report' });
  it.each([
    ['custom_id after id', compact(OPENAI_EXAMPLE)],
    ['custom_id first', compact(OPENAI_EXAMPLE).replace('"id":"batch_req_wnaDys",', '')],
    ['a short id', compact(OPENAI_EXAMPLE).replace('request-2', 'r')],
    ['an empty id', compact(OPENAI_EXAMPLE).replace('request-2', '')],
    ['escapes in the id', compact(OPENAI_EXAMPLE).replace('request-2', 'a\\"b\\u00e9')],
    [
      'custom_id twice (the last wins)',
      compact(OPENAI_EXAMPLE).replace(',"error":null', ',"error":null,"custom_id":"later"'),
    ],
    [
      'a key ending in "custom_id"',
      compact(OPENAI_EXAMPLE).replace('"id":"batch_req_wnaDys",', '"x\\"custom_id":"y",'),
    ],
  ])('%s', (_name, line) => {
    const expected = plainParser().fromValue(JSON.parse(line), 'out.jsonl', 1);
    expect(one(line)).toEqual(expected);
  });

  it('says what JSON.parse says of a line that is not JSON', () => {
    const broken = '{"id":"batch_req_1","custom_id":"row-7","response":{"status_code":200,"bo';
    let reason = '';
    try {
      JSON.parse(broken);
    } catch (error) {
      reason = (error as Error).message;
    }
    expect(one(broken)?.error_message).toBe(`out.jsonl:1: result line is not valid JSON (${reason})`);
  });
});

describe('parseResults: lines that cannot be used', () => {
  it('turns a line that is not JSON into a failed record when its custom_id can be read, naming file and line', () => {
    const p = parser();
    const record = p.fromText('{"custom_id": "row-7", "response": {"status_code": 200, "bo', 'out.jsonl', 42);
    expect(record).toMatchObject({ custom_id: 'row-7', status: 'failed', error_code: 'BP_RESULT_PARSE' });
    expect(record!.error_message).toMatch(/^out\.jsonl:42: result line is not valid JSON/);
    expect(p.problems.count).toBe(1);
    expect(p.problems.first[0]).toMatchObject({
      code: 'BP_RESULT_PARSE',
      context: { file: 'out.jsonl', line: 42 },
    });
  });

  it('reports lines without a custom_id, or not objects, and goes on', () => {
    const p = parser();
    expect(p.fromText('{"response": {}}', 'f', 1)).toBeUndefined();
    expect(p.fromText('[1, 2]', 'f', 2)).toBeUndefined();
    expect(p.fromText('garbage', 'f', 3)).toBeUndefined();
    expect(p.problems.count).toBe(3);
    expect(p.problems.first.map((e) => e.code)).toEqual([
      'BP_RESULT_INVALID',
      'BP_RESULT_INVALID',
      'BP_RESULT_PARSE',
    ]);
  });

  it('fails a line with neither response nor error, or a body of the wrong kind, as BP_RESULT_INVALID', () => {
    expect(one('{"custom_id": "a"}')).toMatchObject({ status: 'failed', error_code: 'BP_RESULT_INVALID' });
    expect(one('{"custom_id": "a", "response": {"status_code": 200, "body": null}}')).toMatchObject({
      status: 'failed',
      error_code: 'BP_RESULT_INVALID',
    });
    expect(
      one('{"custom_id": "a", "response": {"status_code": 200, "body": {"object": "x"}}}'),
    ).toMatchObject({
      status: 'failed',
      error_code: 'BP_RESULT_INVALID',
    });
  });

  it('stops at the first unusable line with badLines "fail", naming file and line', () => {
    const p = new ResultParser({ badLines: 'fail' });
    expect(() => p.fromText('{"response": 1}', 'err.jsonl', 9)).toThrow(BatchpipeError);
    try {
      p.fromText('nope', 'err.jsonl', 9);
    } catch (error) {
      expect(error).toMatchObject({ code: 'BP_RESULT_PARSE', context: { file: 'err.jsonl', line: 9 } });
      expect((error as Error).message).toMatch(/^err\.jsonl:9: /);
    }
  });
});

describe('resultSource', () => {
  it('reads files one after another with their own names and line numbers, keeping the rest after a bad line', async () => {
    const out = fileWith(
      dir,
      'out.jsonl',
      `${answerLine({ custom_id: 'a', content: 'A' })}\r\n\n{broken\r\n${answerLine({ custom_id: 'b', content: 'B' })}`,
    );
    const err = fileWith(dir, 'err.jsonl', `${errorLine('c', 'expired')}\n`);
    const source = resultSource([out, err]);
    const records = await collect<ResultRecord>(source);
    expect(records.map((r) => [r.custom_id, r.status, r.file, r.line])).toEqual([
      ['a', 'ok', out, 1],
      ['b', 'ok', out, 4],
      ['c', 'expired', err, 1],
    ]);
    expect(source.problems.count).toBe(1);
    expect(source.problems.first[0]!.message).toBe(
      `${out}:3: result line is not valid JSON (${jsonError('{broken')})`,
    );
  });

  it('gives the same records whatever the chunk boundaries of a stream', async () => {
    const text = [
      answerLine({ custom_id: 'x', content: 'é 日本 👍' }),
      errorLine('y', 'http'),
      embeddingLine('z', [1, 2]),
    ].join('\n');
    const whole = await collect<ResultRecord>(resultSource(fileWith(dir, 'w.jsonl', text)));
    for (const size of [1, 7, 64]) {
      const parts = await collect<ResultRecord>(resultSource(chunked(text, size), { names: ['w.jsonl'] }));
      expect(parts.map(({ file: _f, ...r }) => r)).toEqual(whole.map(({ file: _f, ...r }) => r));
    }
  });

  it('reports a missing file as BP_INPUT_NOT_FOUND', async () => {
    await expect(collect(resultSource(`${dir}/nope.jsonl`))).rejects.toMatchObject({
      code: 'BP_INPUT_NOT_FOUND',
    });
  });
});

describe('parseResults (stream)', () => {
  it('takes strings, line objects, and Rows and Rejections from jsonlSource', async () => {
    const file = fileWith(
      dir,
      'mixed.jsonl',
      `${answerLine({ custom_id: 'r1', content: 'one' })}\nnot json\n`,
    );
    const stage = parseResults({ name: 'batch.jsonl' });
    const fromSource = await collect<unknown>(jsonlSource(file));
    const out = await through<ResultRecord>(stage, [
      answerLine({ custom_id: 's', content: 'str' }),
      JSON.parse(errorLine('o', 'cancelled')),
      ...fromSource,
    ]);
    expect(out.map((r) => [r.custom_id, r.status, r.file, r.line])).toEqual([
      ['s', 'ok', 'batch.jsonl', 1],
      ['o', 'cancelled', 'batch.jsonl', 2],
      ['r1', 'ok', file, 1],
    ]);
    expect(stage.problems.count).toBe(1);
    expect(stage.problems.first[0]!.context).toMatchObject({ file, line: 2 });
  });

  it('checks its options when called, not mid-stream', () => {
    expect(() => parseResults({ labels: [] })).toThrow(/parseResults: option "labels"/);
    expect(() => parseResults({ badLines: 'skip' as 'fail' })).toThrow(BatchpipeError);
  });
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  return '';
}
