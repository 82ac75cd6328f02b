/**
 * Seeded makers of Batch API output and error lines in the shapes providers write them (OpenAI's
 * documented example, DashScope's shorter one, vLLM's batch runner), for tests and the join bench.
 */

/** mulberry32: the same seeded generator the fixtures use. */
export { random as seeded } from '../fixtures/make-fixtures.js';

export type Flavor = 'openai' | 'dashscope' | 'vllm';

export interface AnswerLine {
  custom_id: string;
  content: string | null;
  flavor?: Flavor;
  finish_reason?: 'stop' | 'length' | 'content_filter';
  reasoning?: string;
  prompt_tokens?: number;
  completion_tokens?: number;
  reasoning_tokens?: number;
  model?: string;
  n?: number;
}

/** A successful chat completion line. */
export function answerLine(a: AnswerLine): string {
  const flavor = a.flavor ?? 'openai';
  const n = a.n ?? 0;
  const usage: Record<string, unknown> = {
    prompt_tokens: a.prompt_tokens ?? 20,
    completion_tokens: a.completion_tokens ?? 3,
    total_tokens: (a.prompt_tokens ?? 20) + (a.completion_tokens ?? 3),
  };
  if (a.reasoning_tokens !== undefined)
    usage.completion_tokens_details = { reasoning_tokens: a.reasoning_tokens };
  const finish = a.finish_reason ?? 'stop';
  if (flavor === 'dashscope') {
    // The DashScope page shows {id, custom_id, response: {status_code, body}}: no request_id, no error.
    const message: Record<string, unknown> = { content: a.content };
    if (a.reasoning !== undefined) message.reasoning_content = a.reasoning;
    return JSON.stringify({
      id: `batch-req-${n}`,
      custom_id: a.custom_id,
      response: {
        status_code: 200,
        body: {
          created: 1_735_000_000 + n,
          usage,
          model: a.model ?? 'qwen-plus',
          id: `chatcmpl-${n}`,
          choices: [{ finish_reason: finish, index: 0, message }],
          object: 'chat.completion',
        },
      },
    });
  }
  const message: Record<string, unknown> = { role: 'assistant', content: a.content };
  if (flavor === 'vllm') {
    if (a.reasoning !== undefined) message.reasoning = a.reasoning;
    message.tool_calls = [];
  } else if (a.reasoning !== undefined) message.reasoning_content = a.reasoning;
  return JSON.stringify({
    id: flavor === 'vllm' ? `vllm-${n}` : `batch_req_${n}`,
    custom_id: a.custom_id,
    response: {
      status_code: 200,
      request_id: flavor === 'vllm' ? `vllm-batch-${n}` : `req_${n}`,
      body: {
        id: `chatcmpl-${n}`,
        object: 'chat.completion',
        created: 1_735_000_000 + n,
        model: a.model ?? (flavor === 'vllm' ? 'Qwen/Qwen3-8B' : 'gpt-4o-mini'),
        choices: [{ index: 0, message, logprobs: null, finish_reason: finish }],
        usage,
        system_fingerprint: null,
      },
    },
    error: null,
  });
}

export type ErrorKind = 'http' | 'expired' | 'cancelled' | 'string' | 'dashscope' | 'body-string';

/** A failed request line, as error files hold them. */
export function errorLine(custom_id: string, kind: ErrorKind, n = 0): string {
  const id = `batch_req_${n}`;
  switch (kind) {
    case 'http':
      return JSON.stringify({
        id,
        custom_id,
        response: {
          status_code: 400,
          request_id: `req_${n}`,
          body: {
            error: {
              message: 'Invalid value for messages',
              type: 'invalid_request_error',
              param: null,
              code: 'invalid_value',
            },
          },
        },
        error: null,
      });
    case 'expired':
      return JSON.stringify({
        id,
        custom_id,
        response: null,
        error: {
          code: 'batch_expired',
          message: 'This request could not be executed before the completion window expired.',
        },
      });
    case 'cancelled':
      return JSON.stringify({
        id,
        custom_id,
        response: null,
        error: {
          code: 'batch_cancelled',
          message: 'This request was not executed because the batch was cancelled.',
        },
      });
    case 'string':
      // vLLM's batch runner: body null, error a plain string.
      return JSON.stringify({
        id: `vllm-${n}`,
        custom_id,
        response: { status_code: 400, request_id: `vllm-batch-${n}`, body: null },
        error: 'The model `nope` does not exist.',
      });
    case 'dashscope':
      return JSON.stringify({
        id,
        custom_id,
        error: { code: 'InvalidParameter', message: 'Range of input length should be [1, 30720]' },
      });
    case 'body-string':
      return JSON.stringify({
        id,
        custom_id,
        response: { status_code: 500, request_id: `req_${n}`, body: 'upstream timed out' },
        error: null,
      });
  }
}

/** An embeddings line. */
export function embeddingLine(custom_id: string, vector: number[], n = 0): string {
  return JSON.stringify({
    id: `batch_req_${n}`,
    custom_id,
    response: {
      status_code: 200,
      request_id: `req_${n}`,
      body: {
        object: 'list',
        data: [{ object: 'embedding', index: 0, embedding: vector }],
        model: 'text-embedding-v4',
        usage: { prompt_tokens: 5, total_tokens: 5 },
      },
    },
    error: null,
  });
}

/** Fisher-Yates with the seeded generator. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
