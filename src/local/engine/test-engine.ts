import { tooDeepAt } from '../../internal/json-depth.js';
import { ApiError } from '../api-error.js';
import { type BodyProblem, checkChatBody, checkEmbeddingBody, textOfContent } from './check-body.js';
import type { Engine, EngineAnswer, EngineRequest } from './engine.js';
import { fateOf, type Knobs, knobsFrom } from './knobs.js';
import { hashString, hex8, type Random, rng } from './random.js';
import { MAX_ANSWER_CHARS, valueForSchema } from './schema-value.js';
import { TextCache } from './text-cache.js';
import { loadTokenizer, type Tokenizer } from './tokens.js';

/** Every response says it came from here, in `model` and `system_fingerprint`: nothing was inferred. */
export const TEST_ENGINE_NAME = 'batchpipe-test-engine';
const FINGERPRINT = 'batchpipe-test-engine-no-inference';

// OpenAI's chat token accounting: each message costs its content plus ~3 tokens of framing, and
// every reply is primed with 3 more (openai-cookbook, "How to count tokens with tiktoken").
const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_REPLY = 3;
const SNIPPET_CHARS = 60;

/** Embedding sizes when a request gives no `dimensions`. */
const DEFAULT_DIMENSIONS: Record<string, number> = {
  'text-embedding-v4': 1024,
  'text-embedding-v3': 1024,
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};
const FALLBACK_DIMENSIONS = 1024;
// OpenAI: "The input must not exceed the max input tokens for the model (8192 tokens for all embedding
// models) ... all embedding models enforce a maximum of 300,000 tokens summed across all inputs in a
// single request" (ref/openai-openapi-full.yaml, CreateEmbeddingRequest). Under the dashscope profile,
// where ref/ gives no such figures for text-embedding-v4, the same numbers bound one request's work as
// the service's own limits, not as a provider fact (the client applies none there).
const EMBEDDING_INPUT_TOKENS = 8192;
const EMBEDDING_REQUEST_TOKENS = 300_000;
/** Characters of keys each text memo holds (prompts repeated across a batch, schemas in prompts). */
const CACHE_CHARS = 8 * 1024 * 1024;
/** Opening braces tried when looking for a schema in a prompt: each try parses up to the text's end. */
const SCHEMA_STARTS = 8;

const REASONING_WORDS = [
  'first',
  'consider',
  'the',
  'question',
  'then',
  'weigh',
  'each',
  'option',
  'check',
  'facts',
  'and',
  'conclude',
];

// DashScope's refusal for content moderation, as its compatible mode returns it.
const REFUSAL = JSON.stringify({
  error: {
    message: 'Input data may contain inappropriate content.',
    type: 'data_inspection_failed',
    param: null,
    code: 'data_inspection_failed',
  },
});

const modelNames = new TextCache<string>(64 * 1024);
/** `"batchpipe-test-engine/<model>"` as JSON, made once per model. */
function modelJson(model: string): string {
  let json = modelNames.get(model);
  if (json === undefined) {
    json = JSON.stringify(`${TEST_ENGINE_NAME}/${model}`);
    modelNames.set(model, json);
  }
  return json;
}

export interface TestEngineOptions {
  tokenizer: 'o200k' | 'estimate';
  /** True when the model thinks unless a request says `enable_thinking: false`. */
  thinksByDefault: (model: string) => boolean;
  /** The model's context window in tokens, when the profile knows it. */
  contextWindow: (model: string) => number | undefined;
  /** Inputs per embeddings request: the profile's documented cap, else the service's own bound. */
  maxEmbeddingInputs?: number | undefined;
}

type Body = Record<string, unknown>;
type ResponseFormat = { type?: unknown; json_schema?: { schema?: unknown } };

/**
 * Deterministic answers without inference: a valid chat completion (schema-valid JSON for a JSON
 * schema, a label for an enum, reasoning when thinking is on), usage from a real tokenizer, and unit
 * vectors for embeddings. Knobs spoil a share of answers the way real models do.
 */
export function createTestEngine(options: TestEngineOptions): Engine {
  let tokenizer: Tokenizer | undefined;
  const schemaInPrompt = new TextCache<unknown>(CACHE_CHARS);

  const count = (text: string) => tokenizer!.count(text);
  // The profile lookups scan its model list; a batch asks the same questions on every line.
  const models = new TextCache<{ thinks: boolean; window: number | undefined }>(64 * 1024);
  const modelFacts = (model: string) => {
    let facts = models.get(model);
    if (facts === undefined) {
      facts = { thinks: options.thinksByDefault(model), window: options.contextWindow(model) };
      models.set(model, facts);
    }
    return facts;
  };
  const repeated = new TextCache<number>(CACHE_CHARS);
  const countRepeated = (text: string) => {
    let n = repeated.get(text);
    if (n === undefined) {
      n = count(text);
      repeated.set(text, n);
    }
    return n;
  };

  /** JSON mode carries its schema in the prompt (DashScope has no json_schema in batch): find it. */
  const promptSchema = (messages: unknown[]): unknown => {
    for (const message of messages) {
      const text = textOfContent(message);
      if (!text.includes('{')) continue;
      let schema = schemaInPrompt.get(text);
      if (schema === undefined) {
        schema = extractSchema(text);
        schemaInPrompt.set(text, schema);
      }
      if (schema !== null) return schema;
    }
    return null;
  };

  const chat = (request: EngineRequest): EngineAnswer => {
    const body = request.body;
    const found = checkChatBody(body);
    if (found) return refused(found);
    let knobs: Knobs;
    try {
      knobs =
        body.metadata === undefined ? request.knobs : knobsFrom(body.metadata, request.knobs, 'metadata');
    } catch (error) {
      if (error instanceof ApiError) return refused({ message: error.message, param: error.param });
      throw error;
    }
    const model = body.model as string;
    const messages = body.messages as unknown[];
    const format = (body.response_format ?? null) as ResponseFormat | null;
    const jsonMode = format?.type === 'json_object' || format?.type === 'json_schema';
    const fate = fateOf(request.key, knobs, jsonMode);
    if (fate === 'refuse') return { status: 400, json: REFUSAL, usage: null };

    let promptTokens = TOKENS_PER_REPLY;
    let lastUser = '';
    for (const message of messages) {
      const text = textOfContent(message);
      const role = (message as Body).role;
      // System prompts repeat on every line of a batch: remember their counts; user texts rarely repeat.
      promptTokens += (role === 'user' ? count(text) : countRepeated(text)) + TOKENS_PER_MESSAGE;
      if (role === 'user') lastUser = text;
    }
    const facts = modelFacts(model);
    if (facts.window !== undefined && promptTokens > facts.window)
      return contextExceeded(facts.window, promptTokens, 'messages');
    const snippet = lastUser.length > SNIPPET_CHARS ? `${lastUser.slice(0, SNIPPET_CHARS)}...` : lastUser;
    const thinking = typeof body.enable_thinking === 'boolean' ? body.enable_thinking : facts.thinks;
    const thinkingBudget = typeof body.thinking_budget === 'number' ? body.thinking_budget : undefined;
    const maxTokens = (body.max_completion_tokens ?? body.max_tokens) as number | null | undefined;
    const n = typeof body.n === 'number' ? body.n : 1;
    const hash = hashString(request.key, knobs.seed);

    let completionTokens = 0;
    let reasoningTokens = 0;
    // Built as text, not objects: this runs once per request of every batch, and one JSON.stringify
    // of each string beats building and serializing the nested response.
    let choices = '';
    const hashHex = hex8(hash);
    // One budget for all choices: `n` (up to 128) must not multiply what a request may cost.
    const budget = { left: MAX_ANSWER_CHARS };
    for (let index = 0; index < n; index++) {
      const h = index === 0 ? hash : hashString(`${index}`, hash);
      const random = rng(h);
      let content: string;
      let cut = false;
      if (format?.type === 'json_schema' || format?.type === 'json_object') {
        const schema = format.type === 'json_schema' ? format.json_schema?.schema : promptSchema(messages);
        ({ content, cut } = jsonAnswer(schema, random, snippet, budget));
      } else
        content = `Test answer ${index === 0 ? hashHex : hex8(h)} from ${TEST_ENGINE_NAME} (no inference) to: "${snippet}"`;
      if (fate === 'invalid_json' && !cut) content = spoilJson(content, h);
      let finish = cut ? 'length' : 'stop';
      let tokens = count(content);
      if (fate === 'truncate' && !cut) {
        content = content.slice(0, Math.max(1, content.length >> 1));
        tokens = count(content);
        finish = 'length';
      }
      if (typeof maxTokens === 'number' && tokens > maxTokens) {
        content = cutToTokens(content, maxTokens, count);
        tokens = count(content);
        finish = 'length';
      }
      let reasoning = '';
      if (thinking) {
        const text = reasoningText(snippet, random, thinkingBudget, count);
        reasoning = `,"reasoning_content":${JSON.stringify(text)}`;
        const r = count(text);
        reasoningTokens += r;
        completionTokens += r;
      }
      completionTokens += tokens;
      if (index > 0) choices += ',';
      choices += `{"index":${index},"message":{"role":"assistant","content":${JSON.stringify(content)}${reasoning},"refusal":null},"finish_reason":"${finish}","logprobs":null}`;
    }
    const total = promptTokens + completionTokens;
    const json =
      `{"id":"chatcmpl-${hashHex}${hex8(request.now)}","object":"chat.completion","created":${request.now},` +
      `"model":${modelJson(model)},"choices":[${choices}],"usage":{"prompt_tokens":${promptTokens},` +
      `"completion_tokens":${completionTokens},"total_tokens":${total},"prompt_tokens_details":{"cached_tokens":0},` +
      `"completion_tokens_details":{"reasoning_tokens":${reasoningTokens}}},"system_fingerprint":"${FINGERPRINT}"}`;
    return {
      status: 200,
      json,
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        reasoning_tokens: reasoningTokens,
      },
    };
  };

  const embed = (request: EngineRequest): EngineAnswer => {
    const body = request.body;
    const found = checkEmbeddingBody(body, options.maxEmbeddingInputs);
    if (found) return refused(found);
    const model = body.model as string;
    const texts = embeddingTexts(body.input);
    const dimensions =
      typeof body.dimensions === 'number'
        ? body.dimensions
        : (DEFAULT_DIMENSIONS[model] ?? FALLBACK_DIMENSIONS);
    const base64 = body.encoding_format === 'base64';
    const seed = hashString(model, request.knobs.seed);
    // Counted before any vector is made: a request over the limits costs no more than its reading.
    const window = Math.min(EMBEDDING_INPUT_TOKENS, modelFacts(model).window ?? EMBEDDING_INPUT_TOKENS);
    let tokens = 0;
    for (let index = 0; index < texts.length; index++) {
      const input = texts[index]!;
      const n = typeof input === 'string' ? count(input) : input.length;
      if (n > window) return contextExceeded(window, n, texts.length === 1 ? 'input' : `input[${index}]`);
      tokens += n;
    }
    if (tokens > EMBEDDING_REQUEST_TOKENS)
      return refused(
        {
          message: `The inputs hold ${tokens} tokens; at most ${EMBEDDING_REQUEST_TOKENS} tokens summed across all inputs are allowed in one request.`,
          param: 'input',
        },
        'max_tokens_per_request',
      );
    const data = texts.map((input, index) => {
      const vector = unitVector(typeof input === 'string' ? input : input.join(','), dimensions, seed);
      return {
        object: 'embedding',
        index,
        embedding: base64 ? Buffer.from(vector.buffer).toString('base64') : Array.from(vector),
      };
    });
    return {
      status: 200,
      json: JSON.stringify({
        object: 'list',
        data,
        model: `${TEST_ENGINE_NAME}/${model}`,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      }),
      usage: { prompt_tokens: tokens, completion_tokens: 0, reasoning_tokens: 0 },
    };
  };

  return {
    name: TEST_ENGINE_NAME,
    synchronous: true,
    async ready() {
      tokenizer ??= await loadTokenizer(options.tokenizer);
    },
    answer(request) {
      return request.endpoint === '/v1/embeddings' ? embed(request) : chat(request);
    },
  };
}

function refused(found: BodyProblem, code: string | null = null): EngineAnswer {
  return {
    status: 400,
    json: JSON.stringify({
      error: { message: found.message, type: 'invalid_request_error', param: found.param, code },
    }),
    usage: null,
  };
}

/** OpenAI's refusal of a prompt longer than the model's context window (no answer is made). */
function contextExceeded(window: number, tokens: number, param: string): EngineAnswer {
  return refused(
    {
      message: `This model's maximum context length is ${window} tokens. However, your request has ${tokens} input tokens. Please reduce the length of the input.`,
      param,
    },
    'context_length_exceeded',
  );
}

/**
 * JSON for the schema within what is left of the request's answer budget. A value the budget cut
 * short comes back as a model at its output limit writes it: its text cut off mid-way (not valid
 * JSON), to be reported with `finish_reason: "length"`.
 */
function jsonAnswer(
  schema: unknown,
  random: Random,
  snippet: string,
  budget: { left: number },
): { content: string; cut: boolean } {
  if (schema === null || schema === undefined)
    return { content: JSON.stringify({ answer: `test answer to: ${snippet}` }), cut: false };
  // Earlier choices used the whole budget: this one ran out before its first token.
  if (budget.left <= 0) return { content: '', cut: true };
  const made = valueForSchema(schema, random, Math.max(0, budget.left));
  let content = JSON.stringify(made.value) ?? 'null';
  if (made.complete) {
    budget.left -= content.length;
    return { content, cut: false };
  }
  content = content.slice(0, Math.max(1, Math.min(content.length - 1, budget.left)));
  budget.left = 0;
  return { content, cut: true };
}

/** Invalid JSON the way models write it: prose around the object, or the last brace missing. */
function spoilJson(json: string, hash: number): string {
  const last = json[json.length - 1];
  if (hash & 1 && (last === '}' || last === ']')) return json.slice(0, -1);
  return `Here is the JSON you asked for:\n${json}`;
}

function cutToTokens(text: string, max: number, count: (text: string) => number): string {
  let cut = text;
  // Proportional cuts converge in one or two steps; stop at the empty string in any case.
  for (let tokens = count(cut); tokens > max && cut.length > 0; tokens = count(cut))
    cut = cut.slice(0, Math.max(0, Math.floor((cut.length * max) / tokens) - 1));
  return cut;
}

function reasoningText(
  snippet: string,
  random: Random,
  budget: number | undefined,
  count: (text: string) => number,
): string {
  const words = 16 + Math.floor(random() * 48);
  let text = `Thinking (${TEST_ENGINE_NAME}, no inference) about "${snippet}":`;
  for (let i = 0; i < words; i++)
    text += ` ${REASONING_WORDS[Math.floor(random() * REASONING_WORDS.length)]}`;
  return budget !== undefined ? cutToTokens(text, budget, count) : text;
}

function embeddingTexts(input: unknown): Array<string | number[]> {
  if (typeof input === 'string') return [input];
  const items = input as unknown[];
  if (items.every((x) => typeof x === 'number')) return [items as number[]];
  return items as Array<string | number[]>;
}

/** A deterministic direction in `dimensions` space, of length 1. */
function unitVector(text: string, dimensions: number, seed: number): Float32Array {
  const random = rng(hashString(text, seed));
  const vector = new Float32Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    const x = random() * 2 - 1;
    vector[i] = x;
    norm += x * x;
  }
  const scale = 1 / Math.sqrt(norm || 1);
  for (let i = 0; i < dimensions; i++) vector[i]! *= scale;
  return vector;
}

// A label instruction in words: `{"label": "..."}` ... `one of: "a", "b"` (how JSON-mode prompts
// state an enum when the provider takes no json_schema).
const LABEL_PROMPT =
  /\{\s*"([^"\\]+)"\s*:\s*"\.\.\."\s*\}[\s\S]*?\bone of:\s*((?:"(?:[^"\\]|\\.)*"(?:\s*,\s*)?)+)/;
const QUOTED = /"(?:[^"\\]|\\.)*"/g;

/**
 * The answer shape a JSON-mode prompt states: a label instruction, or the first JSON object in the
 * text that looks like a JSON schema (has type, properties or enum). Null when there is neither.
 */
function extractSchema(text: string): unknown {
  const labels = LABEL_PROMPT.exec(text);
  if (labels) {
    const field = labels[1]!;
    const values = [...labels[2]!.matchAll(QUOTED)].map((m) => JSON.parse(m[0]) as string);
    return { type: 'object', properties: { [field]: { enum: values } }, required: [field] };
  }
  let start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  // A few starts only: a prompt of many braces would otherwise cost one parse per brace (quadratic).
  for (let tries = 0; start !== -1 && start < end && tries < SCHEMA_STARTS; tries++) {
    try {
      const value = JSON.parse(text.slice(start, end + 1)) as unknown;
      const schemaLike =
        value !== null &&
        typeof value === 'object' &&
        ('properties' in value || 'enum' in value || 'type' in value);
      // A schema too deep to walk is prose to this engine, not a schema to fill.
      return schemaLike && tooDeepAt(value) === undefined ? value : null;
    } catch {
      start = text.indexOf('{', start + 1);
    }
  }
  return null;
}
