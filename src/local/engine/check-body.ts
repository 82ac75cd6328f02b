import { tooDeepAt, tooDeepMessage } from '../../internal/json-depth.js';

/** Why a request body cannot be answered: becomes a 400 (sync) or a line in the error file (batch). */
export interface BodyProblem {
  message: string;
  param: string | null;
}

const ROLES = new Set(['system', 'user', 'assistant', 'tool', 'developer', 'function']);
const FORMATS = new Set(['text', 'json_object', 'json_schema']);
/**
 * Inputs per embeddings request when the profile documents no cap (ref/ gives none for DashScope's
 * text-embedding-v4): the service's own bound on one request's work, not a provider fact. The openai
 * profile passes OpenAI's 2,048 ("any array must be 2048 dimensions or less").
 */
export const SERVICE_MAX_EMBEDDING_INPUTS = 10_000;
// `dimensions` can only shorten a model's vectors: at most its native size (OpenAI's embeddings
// guide; DashScope text-embedding-v4 offers 64 to 2048). An unknown model gets the largest any of
// these returns, so one request makes at most 2048 x 3072 values (~1 s of work), never 2048 x 8192.
const NATIVE_DIMENSIONS: Readonly<Record<string, number>> = {
  'text-embedding-v4': 2048,
  'text-embedding-v3': 1024,
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};
const MAX_DIMENSIONS = 3072;
const MAX_CHOICES = 128;

type Body = Record<string, unknown>;

const problem = (message: string, param: string | null): BodyProblem => ({ message, param });

function isObject(value: unknown): value is Body {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isPositiveInt(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/** A body nested too deep to walk safely (a batch line's: the HTTP route checked its own already). */
function deepProblem(body: Body): BodyProblem | null {
  const at = tooDeepAt(body);
  return at === undefined
    ? null
    : problem(tooDeepMessage('the request body', at), at.split(/[.[]/)[0] || null);
}

/** The shape rules of a chat completion request, as the real-time endpoint checks them. */
export function checkChatBody(body: Body): BodyProblem | null {
  const deep = deepProblem(body);
  if (deep) return deep;
  if (typeof body.model !== 'string' || body.model === '')
    return problem('you must provide a model parameter', 'model');
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0)
    return problem("'messages' must be a non-empty array of messages", 'messages');
  for (let i = 0; i < messages.length; i++) {
    const found = checkMessage(messages[i], `messages[${i}]`);
    if (found) return found;
  }
  if (body.stream === true)
    return problem('stream is not supported by this service; send stream: false or omit it', 'stream');
  for (const key of ['max_tokens', 'max_completion_tokens', 'thinking_budget'] as const) {
    if (body[key] !== undefined && body[key] !== null && !isPositiveInt(body[key]))
      return problem(`${key} must be a positive integer, got ${JSON.stringify(body[key])}`, key);
  }
  if (body.n !== undefined && body.n !== null) {
    const n = body.n;
    if (!isPositiveInt(n) || (n as number) > MAX_CHOICES)
      return problem(`n must be an integer from 1 to ${MAX_CHOICES}, got ${JSON.stringify(n)}`, 'n');
  }
  if (body.temperature !== undefined && body.temperature !== null) {
    const t = body.temperature;
    if (typeof t !== 'number' || t < 0 || t > 2)
      return problem(`temperature must be a number from 0 to 2, got ${JSON.stringify(t)}`, 'temperature');
  }
  if (body.enable_thinking !== undefined && typeof body.enable_thinking !== 'boolean')
    return problem(
      `enable_thinking must be a boolean, got ${JSON.stringify(body.enable_thinking)}`,
      'enable_thinking',
    );
  return checkResponseFormat(body.response_format, messages);
}

function checkMessage(message: unknown, param: string): BodyProblem | null {
  if (!isObject(message)) return problem(`${param} must be an object with a role and content`, param);
  if (typeof message.role !== 'string' || !ROLES.has(message.role))
    return problem(
      `${param}.role must be one of ${[...ROLES].join(', ')}, got ${JSON.stringify(message.role)}`,
      `${param}.role`,
    );
  const content = message.content;
  if (content === null || content === undefined) {
    if (message.role === 'assistant') return null;
    return problem(`${param}.content is required for role ${message.role}`, `${param}.content`);
  }
  if (typeof content === 'string') return null;
  if (!Array.isArray(content))
    return problem(`${param}.content must be a string or an array of content parts`, `${param}.content`);
  for (let j = 0; j < content.length; j++) {
    const part = content[j];
    const where = `${param}.content[${j}]`;
    if (!isObject(part) || typeof part.type !== 'string')
      return problem(`${where} must be an object with a type`, where);
    if (part.type === 'text' && typeof part.text !== 'string')
      return problem(`${where}.text must be a string`, `${where}.text`);
    if (part.type === 'image_url' && !(isObject(part.image_url) && typeof part.image_url.url === 'string'))
      return problem(`${where}.image_url.url must be a string`, `${where}.image_url.url`);
  }
  return null;
}

function checkResponseFormat(format: unknown, messages: unknown[]): BodyProblem | null {
  if (format === undefined || format === null) return null;
  if (!isObject(format) || typeof format.type !== 'string' || !FORMATS.has(format.type))
    return problem(
      `response_format.type must be one of text, json_object, json_schema, got ${JSON.stringify(isObject(format) ? format.type : format)}`,
      'response_format.type',
    );
  if (format.type === 'json_schema') {
    const spec = format.json_schema;
    if (!isObject(spec) || typeof spec.name !== 'string' || spec.name === '')
      return problem(
        'response_format.json_schema must be an object with a name',
        'response_format.json_schema',
      );
    if (spec.schema !== undefined && !isObject(spec.schema))
      return problem(
        'response_format.json_schema.schema must be a JSON schema object',
        'response_format.json_schema.schema',
      );
  }
  // OpenAI and DashScope both refuse JSON mode unless the prompt asks for JSON in words.
  if (format.type === 'json_object' && !messages.some((m) => /json/i.test(textOfContent(m))))
    return problem(
      "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
      'messages',
    );
  return null;
}

/** The text of a message's content (text parts joined); "" for anything else. */
export function textOfContent(message: unknown): string {
  if (!isObject(message)) return '';
  const content = message.content;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) if (isObject(part) && typeof part.text === 'string') text += part.text;
  return text;
}

/** The shape rules of an embeddings request. */
export function checkEmbeddingBody(body: Body, maxInputs = SERVICE_MAX_EMBEDDING_INPUTS): BodyProblem | null {
  const deep = deepProblem(body);
  if (deep) return deep;
  if (typeof body.model !== 'string' || body.model === '')
    return problem('you must provide a model parameter', 'model');
  const input = body.input;
  const emptyText = "'input' must be a non-empty string, or a non-empty array of non-empty strings or tokens";
  if (typeof input === 'string') {
    if (input === '') return problem(emptyText, 'input');
  } else if (Array.isArray(input)) {
    const allTokens = input.length > 0 && input.every((x) => Number.isInteger(x));
    // A flat token array is one input, however many tokens it has.
    if (input.length === 0 || (!allTokens && input.length > maxInputs))
      return problem(`'input' must hold 1 to ${maxInputs} items, got ${input.length}`, 'input');
    const ok =
      allTokens ||
      input.every(
        (x) =>
          (typeof x === 'string' && x !== '') ||
          (Array.isArray(x) && x.length > 0 && x.every((t) => Number.isInteger(t))),
      );
    if (!ok) return problem(emptyText, 'input');
  } else return problem(emptyText, 'input');
  if (body.dimensions !== undefined && body.dimensions !== null) {
    const d = body.dimensions;
    const max = NATIVE_DIMENSIONS[body.model as string] ?? MAX_DIMENSIONS;
    if (!isPositiveInt(d) || (d as number) > max)
      return problem(
        `dimensions must be an integer from 1 to ${max} for ${body.model}, got ${JSON.stringify(d)}`,
        'dimensions',
      );
  }
  const format = body.encoding_format;
  if (format !== undefined && format !== null && format !== 'float' && format !== 'base64')
    return problem(
      `encoding_format must be "float" or "base64", got ${JSON.stringify(format)}`,
      'encoding_format',
    );
  return null;
}
