import type { CountTokens, ModelTokenRule } from './model-tokenizer.js';

type Body = Record<string, unknown>;

/** Input tokens of one request body, by the model's rule; `images` counts image parts not counted. */
export interface InputCount {
  tokens: number;
  /**
   * Tokens of a `json_schema` response format's schema: OpenAI puts the schema in the model's context
   * and bills it as input; whether another provider does is not documented, so it is the upper end only.
   */
  schema: number;
  images: number;
}

/**
 * A chat request's prompt tokens: each message's text plus the template's tokens around it, and apart
 * (`schema`), a `json_schema` response format's schema text. An embeddings request's input texts. Image
 * parts are counted apart: their tokens depend on the image. `countRepeated` counts the texts that
 * repeat from line to line (system prompts, schemas) and may remember them.
 */
export function inputTokens(
  body: Body,
  endpoint: string,
  rule: ModelTokenRule,
  count: CountTokens,
  countRepeated: CountTokens = count,
): InputCount {
  if (endpoint === '/v1/embeddings')
    return { tokens: embeddingTokens(body.input, count), schema: 0, images: 0 };
  let tokens = rule.perRequest;
  let images = 0;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const message of messages) {
    if (message === null || typeof message !== 'object') continue;
    const m = message as Body;
    tokens += rule.perMessage;
    if (typeof m.name === 'string') tokens += rule.perName + count(m.name);
    const content = m.content;
    // System prompts repeat on every line of a batch, user texts rarely: only the first are remembered
    // (looking a unique text up costs a hash of it and memory for nothing).
    if (typeof content === 'string') tokens += m.role === 'user' ? count(content) : countRepeated(content);
    else if (Array.isArray(content))
      for (const part of content) {
        if (part === null || typeof part !== 'object') continue;
        const p = part as Body;
        if (typeof p.text === 'string') tokens += count(p.text);
        else images++;
      }
  }
  const format = body.response_format as { type?: unknown; json_schema?: { schema?: unknown } } | undefined;
  const schema =
    format?.type === 'json_schema' && format.json_schema?.schema !== undefined
      ? countRepeated(JSON.stringify(format.json_schema.schema))
      : 0;
  return { tokens, schema, images };
}

function embeddingTokens(input: unknown, count: CountTokens): number {
  if (typeof input === 'string') return count(input);
  if (!Array.isArray(input)) return 0;
  let tokens = 0;
  for (const item of input) {
    if (typeof item === 'string') tokens += count(item);
    // Token arrays are their own count.
    else if (Array.isArray(item)) tokens += item.length;
    else if (typeof item === 'number') tokens++;
  }
  return tokens;
}

/** A count known to lie between `min` and `max`; `max` null when nothing bounds it. */
export interface TokenRange {
  min: number;
  max: number | null;
}

/** The most tokens a body lets an answer have: `max_completion_tokens`, else `max_tokens`. */
export function answerCap(body: Body): number | undefined {
  const cap = body.max_completion_tokens ?? body.max_tokens;
  return typeof cap === 'number' && cap >= 0 ? cap : undefined;
}

/** How many answers a request asks for (`n`). */
export function choices(body: Body): number {
  return typeof body.n === 'number' && body.n >= 1 ? body.n : 1;
}

/** Caps a range at `cap`, when there is one. */
export function capped(range: TokenRange, cap: number | undefined): TokenRange {
  if (cap === undefined) return range;
  return { min: Math.min(range.min, cap), max: range.max === null ? cap : Math.min(range.max, cap) };
}

/** Both ends times `n`. */
export function times(range: TokenRange, n: number): TokenRange {
  return { min: range.min * n, max: range.max === null ? null : range.max * n };
}

/** Sum of two ranges. */
export function plus(a: TokenRange, b: TokenRange): TokenRange {
  return { min: a.min + b.min, max: a.max === null || b.max === null ? null : a.max + b.max };
}
