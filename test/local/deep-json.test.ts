/**
 * Input nested thousands of levels deep (a JSON Schema of `anyOf` 10,000 deep, a body of arrays) is a
 * bad request: 400 with a message on the real-time endpoints, a non-retryable error line inside a
 * batch, never a 500 from a stack overflow. Bodies are sent as text: the SDK's own JSON.stringify
 * would overflow on such values before anything reached the service.
 */
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH as MAX_BODY_DEPTH } from '../../src/internal/json-depth.js';
import { retryableRequest } from '../../src/providers/retry.js';
import { tempDir } from '../helpers.js';
import { resultLines, serviceFor, submit, waitFor } from './support.js';

const dir = tempDir('bp-local-deep-');
const { service, client } = await serviceFor();

/** A JSON Schema (as text) of `anyOf` nested `depth` levels around a string. */
function deepAnyOf(depth: number): string {
  let schema = '{"type":"string"}';
  for (let i = 0; i < depth; i++) schema = `{"anyOf":[${schema}]}`;
  return schema;
}

/** A JSON array (as text) nested `depth` levels around 1. */
function deepArray(depth: number): string {
  return `${'['.repeat(depth)}1${']'.repeat(depth)}`;
}

const USER = '"messages":[{"role":"user","content":"Describe the product as json."}]';
const SCHEMA_BODY = `{"model":"qwen-plus",${USER},"response_format":{"type":"json_schema","json_schema":{"name":"deep","schema":${deepAnyOf(10_000)}}}}`;

/** The parts of a reply these tests read: an error, or a chat completion's first answer. */
interface Reply {
  error: { message: string; type: string; param: string | null };
  choices: Array<{ message: { content: unknown } }>;
}

async function post(path: string, body: string): Promise<{ status: number; json: Reply }> {
  const reply = await fetch(`${service.url}${path}`, {
    method: 'POST',
    headers: { authorization: 'Bearer local', 'content-type': 'application/json' },
    body,
  });
  return { status: reply.status, json: (await reply.json()) as Reply };
}

describe('deeply nested input', () => {
  it('answers a chat completion whose schema is anyOf 10,000 deep with 400 and a message', async () => {
    const { status, json } = await post('/chat/completions', SCHEMA_BODY);
    expect(status).toBe(400);
    expect(json.error.type).toBe('invalid_request_error');
    expect(json.error.message).toContain(`deeper than ${MAX_BODY_DEPTH} levels`);
    expect(json.error.message).toContain('response_format.json_schema.schema.anyOf[0]');
    expect(json.error.param).toBe('response_format');
  });

  it('answers deeply nested JSON anywhere in a body with 400 (chat and embeddings)', async () => {
    const chat = await post(
      '/chat/completions',
      `{"model":"qwen-plus",${USER},"metadata":{"x":${deepArray(50_000)}}}`,
    );
    expect(chat.status).toBe(400);
    expect(chat.json.error.message).toMatch(/nests deeper than \d+ levels \(at metadata\.x\[0\]/);
    const embeddings = await post(
      '/embeddings',
      `{"model":"text-embedding-v4","input":${deepArray(10_000)}}`,
    );
    expect(embeddings.status).toBe(400);
    expect(embeddings.json.error.param).toBe('input');
  });

  it('still answers a body nested exactly to the limit', async () => {
    // The body is level 1, response_format 2, json_schema 3, schema 4, and each anyOf two more.
    const levels = Math.floor((MAX_BODY_DEPTH - 4) / 2);
    const body = `{"model":"qwen-plus",${USER},"response_format":{"type":"json_schema","json_schema":{"name":"d","schema":${deepAnyOf(levels)}}}}`;
    const { status, json } = await post('/chat/completions', body);
    expect(status).toBe(200);
    expect(typeof json.choices[0]!.message.content).toBe('string');
  });

  it('treats a schema 10,000 deep inside the prompt (JSON mode) as prose, not a crash', async () => {
    const prompt = JSON.stringify(
      `Answer in json following ${deepAnyOf(10_000).replace('"anyOf"', '"type":"object","anyOf"')}`,
    );
    const { status, json } = await post(
      '/chat/completions',
      `{"model":"qwen-plus","messages":[{"role":"user","content":${prompt}}],"response_format":{"type":"json_object"}}`,
    );
    expect(status).toBe(200);
    expect(typeof json.choices[0]!.message.content).toBe('string');
  });

  it('turns such a line inside a batch into a non-retryable error line; the other lines run', async () => {
    const good = (id: string) =>
      `{"custom_id":"${id}","method":"POST","url":"/v1/chat/completions","body":{"model":"qwen-plus",${USER}}}`;
    const content = [
      good('a'),
      `{"custom_id":"deep","method":"POST","url":"/v1/chat/completions","body":${SCHEMA_BODY}}`,
      `{"custom_id":"deeper","method":"POST","url":"/v1/chat/completions","body":{"model":"qwen-plus",${USER},"tools":${deepArray(20_000)}}}`,
      good('b'),
    ].join('\n');
    const batch = await waitFor(client, (await submit(client, dir, `${content}\n`)).id);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 4, completed: 2, failed: 2 });
    const output = await resultLines(client, batch.output_file_id);
    expect(output.map((l) => l.custom_id).sort()).toEqual(['a', 'b']);
    const errors = await resultLines(client, batch.error_file_id);
    expect(errors.map((l) => l.custom_id).sort()).toEqual(['deep', 'deeper']);
    for (const line of errors) {
      // A 400 is the request's own fault: the client does not send it again.
      expect(line.response?.status_code).toBe(400);
      const { error } = line.response!.body as { error: { message: string; code: string | null } };
      expect(error.message).toContain(`deeper than ${MAX_BODY_DEPTH} levels`);
      expect(retryableRequest(error.code, line.response?.status_code)).toBe(false);
    }
  });
});
