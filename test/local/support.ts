/**
 * Shared pieces of the local service's tests: a service per test file on port 0, the official openai
 * client pointed at it, seeded request files, polling, result files read back, and the OpenAPI
 * schemas (test/local/ref/openai-batch-openapi.yaml, a copy of the provider's spec) as validators.
 */
import { openAsBlob, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { ErrorObject, ValidateFunction } from 'ajv';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import OpenAI, { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { afterAll } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { type LocalService, type LocalServiceOptions, startLocalService } from '../../src/local/index.js';
import { random } from '../fixtures/make-fixtures.js';

export const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

/** Starts a service for this test file (closed after its tests) and an openai client for it. */
export async function serviceFor(
  options: LocalServiceOptions = {},
): Promise<{ service: LocalService; client: OpenAI }> {
  const service = await startLocalService(options);
  afterAll(() => service.close());
  return { service, client: clientFor(service) };
}

/** An openai client for a service (or anything with its base URL). */
export function clientFor(service: { url: string }, apiKey = 'local'): OpenAI {
  return new OpenAI({ baseURL: service.url, apiKey, maxRetries: 0 });
}

export interface RequestLineSpec {
  custom_id: string;
  method: string;
  url: string;
  body: Record<string, unknown>;
}

/** Seeded chat request lines: `count` distinct prompts, custom_ids `<prefix><n>`. */
export function chatLines(
  count: number,
  options: { seed?: number; model?: string; prefix?: string; body?: Record<string, unknown> } = {},
): RequestLineSpec[] {
  const next = random(options.seed ?? 1);
  const words = [
    'cheap',
    'sturdy',
    'late',
    'broken',
    'lovely',
    'noisy',
    'fast',
    'crème brûlée',
    '很好',
    '👍🏽',
  ];
  const lines: RequestLineSpec[] = [];
  for (let i = 1; i <= count; i++) {
    let text = '';
    const n = 3 + Math.floor(next() * 12);
    for (let w = 0; w < n; w++) text += `${words[Math.floor(next() * words.length)]} `;
    lines.push({
      custom_id: `${options.prefix ?? 'row-'}${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: options.model ?? 'qwen-plus',
        messages: [
          { role: 'system', content: 'Classify the review.' },
          { role: 'user', content: text.trim() },
        ],
        ...options.body,
      },
    });
  }
  return lines;
}

export function jsonl(lines: readonly unknown[]): string {
  return lines.map((line) => `${typeof line === 'string' ? line : JSON.stringify(line)}\n`).join('');
}

let written = 0;

/** Writes a request file (text or lines) into `dir` and uploads it the way the SDK's users do. */
export async function upload(
  client: OpenAI,
  dir: string,
  content: string | Buffer | readonly unknown[],
  name = 'requests.jsonl',
) {
  const path = join(dir, `${++written}-${name}`);
  writeFileSync(path, typeof content === 'string' || Buffer.isBuffer(content) ? content : jsonl(content));
  return client.files.create({ file: await toFile(await openAsBlob(path), name), purpose: 'batch' });
}

/** Uploads lines and creates a chat batch on them. */
export async function submit(
  client: OpenAI,
  dir: string,
  content: string | Buffer | readonly unknown[],
  create: Partial<OpenAI.Batches.BatchCreateParams> = {},
): Promise<Batch> {
  const file = await upload(client, dir, content);
  return client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    ...create,
  });
}

/** Polls until the batch reaches a terminal state (or `until` holds). */
export async function waitFor(
  client: OpenAI,
  id: string,
  until: (batch: Batch) => boolean = (b) => TERMINAL.has(b.status),
  timeoutMs = 30_000,
): Promise<Batch> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await client.batches.retrieve(id);
    if (until(batch)) return batch;
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${batch.status} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

export interface ResultLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: Record<string, unknown> } | null;
  error: { code: string; message: string } | null;
}

/** A result file's lines, parsed (streamed through the SDK's `files.content`). */
export async function resultLines(client: OpenAI, fileId: string | null | undefined): Promise<ResultLine[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ResultLine);
}

/** custom_ids of a batch's output and error files together, with how often each appears. */
export async function resultIds(client: OpenAI, batch: Batch): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const line of [
    ...(await resultLines(client, batch.output_file_id)),
    ...(await resultLines(client, batch.error_file_id)),
  ])
    counts.set(line.custom_id, (counts.get(line.custom_id) ?? 0) + 1);
  return counts;
}

/** The content of an assistant message in a result line. */
export function contentOf(line: ResultLine): string {
  const choices = line.response?.body.choices as Array<{ message: { content: string } }>;
  return choices[0]!.message.content;
}

// --- OpenAPI schemas ---------------------------------------------------------------------------

const SPEC = fileURLToPath(new URL('./ref/openai-batch-openapi.yaml', import.meta.url));
type Ajv = import('ajv').default;
const Ajv2020 = (Ajv2020Module as unknown as { default: new (o: object) => Ajv }).default ?? Ajv2020Module;
const addFormats =
  (addFormatsModule as unknown as { default: (ajv: Ajv) => void }).default ?? addFormatsModule;

let ajv: Ajv | undefined;

/**
 * A validator for a component schema of the spec (`Batch`, `OpenAIFile`, ...). The spec types the
 * optional fields of Batch and OpenAIFile as plain strings and integers, yet its own example (and the
 * API) returns null for those not reached (`"failed_at": null`, `"errors": null`), and
 * BatchRequestOutput marks nullable fields in OpenAPI 3.0 style: so optional properties, and fields
 * marked `nullable`, also accept null. Everything else is checked as the spec says.
 */
export function schema(name: string): ValidateFunction {
  ajv ??= makeAjv();
  const validate = ajv.getSchema(`openai#/components/schemas/${name}`);
  if (!validate) throw new Error(`no schema ${name} in ${SPEC}`);
  return validate;
}

function makeAjv(): Ajv {
  const spec = parseYaml(readFileSync(SPEC, 'utf8')) as { components: { schemas: Record<string, unknown> } };
  for (const value of Object.values(spec.components.schemas)) allowNulls(value);
  const instance = new Ajv2020({ strict: false, allErrors: true });
  addFormats(instance);
  instance.addFormat('unixtime', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  instance.addSchema({ $id: 'openai', components: spec.components });
  return instance;
}

function allowNulls(node: unknown): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const item of node) allowNulls(item);
    return;
  }
  const schemaNode = node as Record<string, unknown>;
  const properties = schemaNode.properties as Record<string, Record<string, unknown>> | undefined;
  if (properties && typeof properties === 'object') {
    const required = new Set((schemaNode.required as string[] | undefined) ?? []);
    for (const [key, value] of Object.entries(properties)) {
      allowNulls(value);
      if (!required.has(key) || value.nullable === true)
        properties[key] = { anyOf: [value, { type: 'null' }] };
    }
  }
  for (const [key, value] of Object.entries(schemaNode)) if (key !== 'properties') allowNulls(value);
}

/** A validator for any JSON schema (draft 2020-12), e.g. a response_format's. */
export function validatorFor(jsonSchema: object): ValidateFunction {
  const instance = new Ajv2020({ strict: false, allErrors: true });
  addFormats(instance);
  return instance.compile(jsonSchema);
}

/** Asserts that `value` matches the spec's schema `name`, naming every mismatch. */
export function expectSchema(name: string, value: unknown): void {
  const validate = schema(name);
  if (!validate(value))
    throw new Error(
      `${name} does not match the spec:\n${(validate.errors ?? []).map((e: ErrorObject) => `  ${e.instancePath} ${e.message}`).join('\n')}\n${JSON.stringify(value).slice(0, 2000)}`,
    );
}

/** Raw HTTP against the service (for what the SDK never sends). */
export async function raw(
  service: { url: string },
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const base = service.url.replace(/\/v1$/, '');
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, body, headers: res.headers };
}
