import { z } from 'zod';
import { BatchpipeError } from '../../errors.js';
import { deeperThan, MAX_JSON_DEPTH, tooDeepMessage } from '../../internal/json-depth.js';
import type { Rejection, Row } from '../../types.js';
import {
  type AnswerSchema,
  compileStructuredOutput,
  isAnswerSchema,
  type StructuredOutput,
} from '../structured/structured-output.js';
import { scanResultLine } from './result-line-scan.js';
import { RESULT_STATUSES, type ResultStatus } from './result-status.js';

export type { AnswerSchema } from '../structured/structured-output.js';
export { RESULT_STATUSES, type ResultStatus };

/** One output or error line, in one shape whatever the provider wrote. Absent facts are null. */
export interface ResultRecord {
  kind: 'result';
  custom_id: string;
  status: ResultStatus;
  /** The answer text (chat: `choices[0].message.content`; responses: the output text). */
  content: string | null;
  /** Thinking text (`reasoning_content`, or vLLM's `reasoning`). */
  reasoning_content: string | null;
  /** The validated answer, with `labels` or `schema`; null otherwise or when it failed. */
  parsed: unknown;
  /** Embeddings: the vector (or the vectors, for a request with several inputs). */
  embedding: number[] | number[][] | null;
  finish_reason: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  reasoning_tokens: number | null;
  model: string | null;
  request_id: string | null;
  /** HTTP status of the request, when the line says. */
  status_code: number | null;
  /** The answer came from the result cache (the line says `"cached": true`). */
  cached: boolean;
  /** The provider's code (`batch_expired`, `InvalidParameter`, ...) or a BP_ code batchpipe set. */
  error_code: string | null;
  error_message: string | null;
  /** Where the line was read. */
  file: string;
  line: number;
}

/** Called for each result line that cannot be used, with an error naming file and line. */
export type ResultProblemHandler = (problem: BatchpipeError) => void;

export const ParseResultsFields = {
  /** Parse answers as one of these labels (`{"label": ...}`, or the bare label). */
  labels: z.array(z.string().min(1)).min(1).optional(),
  /** Parse answers as JSON and validate them with this zod schema (or JSON Schema object). */
  schema: z.custom<AnswerSchema>(isAnswerSchema, 'expected a zod schema or a JSON Schema object').optional(),
  /** A line that cannot be used is reported and skipped ("report", default) or stops the run ("fail"). */
  badLines: z.enum(['report', 'fail']).default('report'),
  /** Called once per unusable line (they are also counted on the stream's `problems`). */
  onProblem: z.custom<ResultProblemHandler>((value) => typeof value === 'function').optional(),
};

/** How result lines are parsed: the options every result stage shares, checked and defaulted. */
export interface ParseSettings {
  labels?: string[] | undefined;
  schema?: AnswerSchema | undefined;
  badLines: 'report' | 'fail';
  onProblem?: ResultProblemHandler | undefined;
}

/** Unusable lines seen so far: how many, and the first few in full. */
export interface ResultProblems {
  count: number;
  first: BatchpipeError[];
}

/** Problems kept in full; the rest are counted. */
export const KEPT_PROBLEMS = 100;

/** Status precedence when one custom_id has several results (a retry, a re-ask): lower wins. */
export const STATUS_RANK: Readonly<Record<ResultStatus, number>> = {
  ok: 0,
  truncated: 1,
  invalid_output: 2,
  failed: 3,
  expired: 3,
  cancelled: 3,
  rejected: 4,
  stale: 4,
  missing: 5,
};

const CUSTOM_ID_IN_TEXT = /"custom_id"\s*:\s*("(?:[^"\\]|\\.)*")/;

/** The per-line work of parseResults and resultSource, compiled once from the options. */
export class ResultParser {
  readonly problems: ResultProblems;
  readonly #structured: StructuredOutput | undefined;
  readonly #opts: ParseSettings;

  /** `problems`: where unusable lines are counted (a new count by default). */
  constructor(opts: ParseSettings, problems: ResultProblems = { count: 0, first: [] }) {
    this.problems = problems;
    this.#opts = opts;
    this.#structured = compileStructuredOutput({ labels: opts.labels, schema: opts.schema });
  }

  /** What the labels or schema compiled to (the join reads its fields). */
  get structured(): StructuredOutput | undefined {
    return this.#structured;
  }

  /** One item of a stream: a line as text, a Row or Rejection from jsonlSource, a line object, a record. */
  fromItem(item: unknown, file: string, line: number): ResultRecord | undefined {
    if (typeof item === 'string') return this.fromText(item, file, line);
    if (isRecord(item)) {
      if (item.kind === 'row' && isRecord(item.values)) {
        const row = item as unknown as Row;
        return this.fromValue(row.values, row.file, row.line);
      }
      if (item.kind === 'rejection') {
        const r = item as unknown as Rejection;
        this.#problem('BP_RESULT_PARSE', `result line cannot be read: ${r.message}`, r.file, r.line);
        return undefined;
      }
      if (item.kind === 'result') return item as unknown as ResultRecord;
    }
    return this.fromValue(item, file, line);
  }

  /**
   * One line of an output or error file as bytes (`bytes[start, end)`, without its line end): the
   * record fromText gives for its text, read from the bytes where the line is a plain JSON object
   * (scanResultLine), else from its text. `utf8: false`: the bytes are not valid UTF-8 (see fromText).
   */
  fromBytes(
    bytes: Buffer,
    start: number,
    end: number,
    file: string,
    line: number,
    utf8 = true,
  ): ResultRecord | undefined {
    // A first line starting with a byte order mark goes as text (fromText drops the mark).
    const marked =
      line === 1 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf;
    const value = utf8 && !marked ? scanResultLine(bytes, start, end) : undefined;
    if (value !== undefined) return this.fromValue(value, file, line);
    return this.fromText(bytes.toString('utf8', start, end), file, line, utf8);
  }

  /**
   * One line of an output or error file. A line that is not JSON still yields a record when its
   * custom_id can be read. `utf8: false`: the line's bytes were not valid UTF-8 (`text` holds
   * replacement characters), so its answer cannot be trusted: it fails, as an unparseable line does.
   */
  fromText(text: string, file: string, line: number, utf8 = true): ResultRecord | undefined {
    // A byte order mark before the first line (some tools write one) is not part of it.
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (!utf8) return this.#notUtf8(text, file, line);
    let value: unknown;
    try {
      value = parseResultLine(text);
    } catch (error) {
      if (text.trim() === '') return undefined;
      const message = `result line is not valid JSON (${(error as Error).message})`;
      const id = salvageId(text);
      this.#problem('BP_RESULT_PARSE', message, file, line, id);
      if (id === undefined) return undefined;
      const record = blankRecord(id, file, line);
      return fail(record, 'failed', 'BP_RESULT_PARSE', `${file}:${line}: ${message}`);
    }
    return this.fromValue(value, file, line);
  }

  /**
   * One parsed line. What it reads of the line (here and in the functions it calls) must be among the
   * members result-line-scan.ts follows: fromBytes hands it only those.
   */
  fromValue(value: unknown, file: string, line: number): ResultRecord | undefined {
    if (!isRecord(value)) {
      this.#problem('BP_RESULT_INVALID', `expected a JSON object, got ${kindOf(value)}`, file, line);
      return undefined;
    }
    const rawId = value.custom_id;
    const id = typeof rawId === 'string' ? rawId : typeof rawId === 'number' ? String(rawId) : '';
    if (id === '') {
      this.#problem(
        'BP_RESULT_INVALID',
        'the line has no custom_id, so no row can be matched to it',
        file,
        line,
      );
      return undefined;
    }
    const record = blankRecord(id, file, line);
    record.cached = value.cached === true;
    const error = value.error;
    const response = value.response;
    if (hasError(error)) {
      if (isRecord(response)) readResponseFacts(record, response);
      applyError(record, error);
    } else if (isRecord(response)) {
      readResponse(record, response, file, line);
    } else {
      fail(
        record,
        'failed',
        'BP_RESULT_INVALID',
        `${file}:${line}: the line has neither "response" nor "error"`,
      );
    }
    if (this.#structured && (record.status === 'ok' || record.status === 'truncated')) {
      const checked = this.#structured.check(record.content);
      if (checked.ok) record.parsed = checked.value;
      else if (record.status === 'ok') fail(record, 'invalid_output', checked.code, checked.message);
      else {
        // A cut-off answer stays `truncated` (the more useful fact); the parse failure is its message.
        record.error_code = checked.code;
        record.error_message = checked.message;
      }
    }
    return record;
  }

  #notUtf8(text: string, file: string, line: number): ResultRecord | undefined {
    const message =
      'result line is not valid UTF-8 (the Batch API writes UTF-8: the file was changed or cut)';
    const id = salvageId(text);
    this.#problem('BP_INPUT_ENCODING', message, file, line, id);
    if (id === undefined) return undefined;
    return fail(blankRecord(id, file, line), 'failed', 'BP_INPUT_ENCODING', `${file}:${line}: ${message}`);
  }

  #problem(
    code: 'BP_RESULT_PARSE' | 'BP_RESULT_INVALID' | 'BP_INPUT_ENCODING',
    message: string,
    file: string,
    line: number,
    custom_id?: string,
  ): void {
    const error = new BatchpipeError(code, message, { file, line, custom_id });
    if (this.#opts.badLines === 'fail') throw error;
    this.problems.count++;
    if (this.problems.first.length < KEPT_PROBLEMS) this.problems.first.push(error);
    this.#opts.onProblem?.(error);
  }
}

/** A result record of `custom_id` with nothing read yet: status ok, every field null. */
export function blankRecord(custom_id: string, file: string, line: number): ResultRecord {
  return {
    kind: 'result',
    custom_id,
    status: 'ok',
    content: null,
    reasoning_content: null,
    parsed: null,
    embedding: null,
    finish_reason: null,
    prompt_tokens: null,
    completion_tokens: null,
    reasoning_tokens: null,
    model: null,
    request_id: null,
    status_code: null,
    cached: false,
    error_code: null,
    error_message: null,
    file,
    line,
  };
}

function fail(
  record: ResultRecord,
  status: ResultStatus,
  code: string | null,
  message: string,
): ResultRecord {
  record.status = status;
  record.error_code = code;
  record.error_message = message;
  return record;
}

/** Status code, request id, model and usage: kept even when the line reports an error. */
function readResponseFacts(
  record: ResultRecord,
  response: Record<string, unknown>,
): Record<string, unknown> | undefined {
  record.status_code = int(response.status_code);
  record.request_id = text(response.request_id);
  let body = response.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  if (!isRecord(body)) return undefined;
  record.request_id ??= text(body.request_id);
  record.model = text(body.model);
  if (isRecord(body.usage)) readUsage(record, body.usage);
  return body;
}

function readResponse(
  record: ResultRecord,
  response: Record<string, unknown>,
  file: string,
  line: number,
): void {
  const body = readResponseFacts(record, response);
  const status = record.status_code;
  const httpError = status !== null && (status < 200 || status >= 300);
  if (!body) {
    const raw = response.body;
    if (httpError) {
      fail(
        record,
        'failed',
        `http_${status}`,
        typeof raw === 'string' && raw !== '' ? raw : `HTTP ${status}`,
      );
    } else {
      fail(
        record,
        'failed',
        'BP_RESULT_INVALID',
        `${file}:${line}: response.body is ${kindOf(raw)}, expected an object`,
      );
    }
    return;
  }
  const error = body.error;
  if (hasError(error)) {
    applyError(record, error, status);
    return;
  }
  if (httpError) {
    // DashScope's native error body is {code, message, request_id} at the top level.
    const code = text(body.code) ?? `http_${status}`;
    fail(record, 'failed', code, text(body.message) ?? `HTTP ${status}`);
    return;
  }
  if (Array.isArray(body.choices)) readChoice(record, body.choices[0], file, line);
  else if (Array.isArray(body.data)) readEmbeddings(record, body.data, file, line);
  else if (Array.isArray(body.output)) readResponsesOutput(record, body);
  else
    fail(
      record,
      'failed',
      'BP_RESULT_INVALID',
      `${file}:${line}: the response body has no choices, data or output`,
    );
}

function readChoice(record: ResultRecord, choice: unknown, file: string, line: number): void {
  if (!isRecord(choice)) {
    fail(record, 'failed', 'BP_RESULT_INVALID', `${file}:${line}: the response has no choices`);
    return;
  }
  record.finish_reason = text(choice.finish_reason);
  let refusal: string | null = null;
  const message = choice.message;
  if (isRecord(message)) {
    record.content = contentText(message.content);
    record.reasoning_content = text(message.reasoning_content) ?? text(message.reasoning);
    refusal = text(message.refusal);
  } else if (typeof choice.text === 'string') {
    record.content = choice.text; // /v1/completions
  }
  if (refusal !== null && record.content === null) fail(record, 'failed', 'BP_OUTPUT_REFUSED', refusal);
  else if (record.finish_reason === 'length') record.status = 'truncated';
  else if (record.finish_reason === 'content_filter')
    fail(record, 'failed', 'BP_OUTPUT_FILTERED', 'the answer was withheld by the content filter');
}

function readEmbeddings(record: ResultRecord, data: unknown[], file: string, line: number): void {
  const vectors: number[][] = [];
  for (const item of data) {
    const vector = isRecord(item) ? toVector(item.embedding) : undefined;
    if (vector === undefined) {
      fail(record, 'failed', 'BP_RESULT_INVALID', `${file}:${line}: an embedding is not a list of numbers`);
      return;
    }
    const at = isRecord(item) ? int(item.index) : null;
    vectors[at !== null && at >= 0 && at < data.length ? at : vectors.length] = vector;
  }
  if (vectors.length === 0) {
    fail(record, 'failed', 'BP_RESULT_INVALID', `${file}:${line}: the response has no embeddings`);
    return;
  }
  record.embedding = vectors.length === 1 ? vectors[0]! : vectors;
}

/** `/v1/responses` bodies: output items of type message (text, refusal) and reasoning (summary). */
function readResponsesOutput(record: ResultRecord, body: Record<string, unknown>): void {
  let content: string | null = null;
  let reasoning: string | null = null;
  let refusal: string | null = null;
  for (const item of body.output as unknown[]) {
    if (!isRecord(item)) continue;
    const parts = Array.isArray(item.content)
      ? item.content
      : Array.isArray(item.summary)
        ? item.summary
        : [];
    for (const part of parts) {
      if (!isRecord(part)) continue;
      const value = text(part.text);
      if (item.type === 'reasoning' && value !== null) reasoning = (reasoning ?? '') + value;
      else if (part.type === 'output_text' && value !== null) content = (content ?? '') + value;
      else if (part.type === 'refusal') refusal = text(part.refusal);
    }
  }
  record.content = content;
  record.reasoning_content = reasoning;
  const details = isRecord(body.incomplete_details) ? body.incomplete_details : undefined;
  if (body.status === 'incomplete' && details?.reason === 'max_output_tokens') {
    record.finish_reason = 'length';
    record.status = 'truncated';
  } else if (refusal !== null && content === null) fail(record, 'failed', 'BP_OUTPUT_REFUSED', refusal);
  else if (body.status === 'failed') fail(record, 'failed', null, 'the response failed');
  else record.finish_reason = text(body.status) === 'completed' ? 'stop' : text(body.status);
}

function readUsage(record: ResultRecord, usage: Record<string, unknown>): void {
  record.prompt_tokens = int(usage.prompt_tokens) ?? int(usage.input_tokens);
  record.completion_tokens = int(usage.completion_tokens) ?? int(usage.output_tokens);
  const details = isRecord(usage.completion_tokens_details)
    ? usage.completion_tokens_details
    : isRecord(usage.output_tokens_details)
      ? usage.output_tokens_details
      : undefined;
  record.reasoning_tokens = int(details?.reasoning_tokens) ?? int(usage.reasoning_tokens);
}

/**
 * An `error` as the documents show it ({code, message}) or as servers send it (a string, a number
 * code, `type` instead of `code`). Expired and cancelled requests are told apart by code
 * (OpenAI: batch_expired, batch_cancelled).
 */
function applyError(record: ResultRecord, error: unknown, status: number | null = record.status_code): void {
  let code: string | null = null;
  let message: string;
  if (isRecord(error)) {
    code =
      text(error.code) ?? (typeof error.code === 'number' ? String(error.code) : null) ?? text(error.type);
    message = text(error.message) ?? errorText(error);
  } else {
    message = typeof error === 'string' ? error : errorText(error);
  }
  if (code === null && status !== null && (status < 200 || status >= 300)) code = `http_${status}`;
  const status_ =
    code !== null && /expired/i.test(code)
      ? 'expired'
      : code !== null && /cancel/i.test(code)
        ? 'cancelled'
        : 'failed';
  fail(record, status_, code, message);
}

/** An error with no message, as its JSON: any the server sent, short of one too deep to serialize. */
function errorText(error: unknown): string {
  if (error !== null && typeof error === 'object' && deeperThan(error))
    return `the error is ${tooDeepMessage('a value that')}`;
  return JSON.stringify(error);
}

/** Message content as text: a string, or the text parts of a list. */
function contentText(content: unknown): string | null {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return null;
  let out: string | null = null;
  for (const part of content) {
    if (typeof part === 'string') out = (out ?? '') + part;
    else if (isRecord(part) && typeof part.text === 'string') out = (out ?? '') + part.text;
  }
  return out;
}

/** A vector: a list of numbers, or base64 float32 (`encoding_format: "base64"`). */
function toVector(value: unknown): number[] | undefined {
  if (Array.isArray(value)) {
    for (const n of value) if (typeof n !== 'number') return undefined;
    return value as number[];
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'base64');
    if (bytes.length % 4 !== 0) return undefined;
    const out: number[] = new Array(bytes.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
    return out;
  }
  return undefined;
}

function salvageId(line: string): string | undefined {
  const match = CUSTOM_ID_IN_TEXT.exec(line);
  if (!match) return undefined;
  try {
    const id = JSON.parse(match[1]!) as string;
    return id === '' ? undefined : id;
  } catch {
    return undefined;
  }
}

/**
 * An `error` field that reports something: not null, false, "", {} or an object whose fields are all
 * such (`{"code": null, "message": null}`): servers write all of them for "none".
 */
function hasError(error: unknown, depth = 1): boolean {
  if (error === null || error === undefined || error === false || error === '') return false;
  // So deep a value is not "none" (and the walk stops before the stack does).
  if (!isRecord(error) || depth > MAX_JSON_DEPTH) return true;
  for (const key in error) if (hasError(error[key], depth + 1)) return true;
  return false;
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function int(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
    return Number(value);
  return null;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A line that starts as providers write them: `{"id":"<id>","custom_id":"` (the id member optional). */
const LEADING_CUSTOM_ID = /^\{(?:"id":"[^"\\]*",)?"custom_id":"/;
/** Ten characters before the custom_id while it is parsed (see parseResultLine). */
const ID_PAD = '##########';

/**
 * JSON.parse of a result line. V8 interns every JSON string value of up to ten characters, in the
 * old generation and in a string table that never shrinks: a million ids like `row-123456` grew a
 * result thread by tens of MB (peak RSS of a 1M-row join: +18 MB). So a custom_id where providers
 * put it (first, or after `id`) is parsed ten characters longer, and those are cut off again; any
 * other line is parsed as it is.
 */
function parseResultLine(text: string): unknown {
  const lead = LEADING_CUSTOM_ID.exec(text);
  if (!lead || text.includes('"custom_id"', lead[0].length)) return JSON.parse(text);
  const at = lead[0].length;
  let value: { custom_id: string };
  try {
    value = JSON.parse(`${text.slice(0, at)}${ID_PAD}${text.slice(at)}`) as { custom_id: string };
  } catch {
    // The error as the line is (its positions are not shifted by the pad).
    return JSON.parse(text);
  }
  value.custom_id = value.custom_id.slice(ID_PAD.length);
  return value;
}
