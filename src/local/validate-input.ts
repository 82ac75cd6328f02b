import type { FileLimits } from '../providers/profile.js';
import type { EngineEndpoint } from './engine/engine.js';
import { ENGINE_ENDPOINTS } from './engine/engine.js';
import { readLines } from './line-reader.js';

/** One item of a failed batch's `errors.data`, as the Batch API reports validation problems. */
export interface BatchErrorItem {
  code: string;
  line: number | null;
  message: string;
  param: string | null;
}

export type Validation =
  | { kind: 'ok'; lines: number; model: string }
  | { kind: 'failed'; errors: BatchErrorItem[] }
  | { kind: 'halted' };

export interface InputRules {
  limits: FileLimits;
  /** The batch's endpoint: every line's url must be it. */
  endpoint: EngineEndpoint;
  /** Models offered, or null for any. */
  models: ReadonlySet<string> | null;
  /** Problems reported before giving up on the file. */
  maxErrors: number;
}

const ENDPOINTS: ReadonlySet<string> = new Set(ENGINE_ENDPOINTS);
/** Lines between checks of `halted` (a cancel or expiry stops validation too). */
const HALT_CHECK_LINES = 4096;

/**
 * Checks a whole input file before any request runs, as the providers do ("the task validation
 * fails"): scale (lines, bytes, bytes per line) and every line (UTF-8 JSON object, custom_id present,
 * unique and short enough, method POST, url the batch's endpoint, one model, an offered model).
 * Streams the file; memory holds only the custom_ids of one file (bounded by the line limit).
 */
export async function validateInputFile(
  path: string,
  bytes: number,
  rules: InputRules,
  halted: () => boolean,
): Promise<Validation> {
  const { limits } = rules;
  if (bytes > limits.maxBytesPerFile)
    return failed([
      item(
        'file_too_large',
        null,
        `the input file is ${bytes} bytes; a file may hold at most ${limits.maxBytesPerFile} bytes`,
        null,
      ),
    ]);
  const errors: BatchErrorItem[] = [];
  const ids = new Set<string>();
  let model: string | undefined;
  let lines = 0;
  const report = (error: BatchErrorItem) => {
    errors.push(error);
    return errors.length >= rules.maxErrors;
  };
  outer: for await (const chunk of readLines(path, { maxLineBytes: limits.maxLineBytes })) {
    for (const line of chunk) {
      lines = line.line;
      if (lines > limits.maxLinesPerFile) {
        report(
          item(
            'too_many_lines',
            lines,
            `the input file holds more than ${limits.maxLinesPerFile} requests; split it into several files`,
            null,
          ),
        );
        break outer;
      }
      if (lines % HALT_CHECK_LINES === 0 && halted()) return { kind: 'halted' };
      const problem = checkLine(line.text, line.bytes, line.utf8, line.line, rules, ids, model);
      if (typeof problem === 'string') model ??= problem;
      else if (report(problem)) break outer;
    }
  }
  if (halted()) return { kind: 'halted' };
  if (errors.length > 0) return failed(errors);
  if (lines === 0 || model === undefined)
    return failed([item('empty_file', null, 'the input file holds no requests', null)]);
  return { kind: 'ok', lines, model };
}

/** The line's model when the line is valid, or what is wrong with it. */
function checkLine(
  text: string | null,
  bytes: number,
  utf8: boolean,
  line: number,
  rules: InputRules,
  ids: Set<string>,
  model: string | undefined,
): string | BatchErrorItem {
  const { limits } = rules;
  if (text === null || bytes > limits.maxLineBytes)
    return item(
      'line_too_large',
      line,
      `the line is ${bytes} bytes; a line may hold at most ${limits.maxLineBytes} bytes`,
      null,
    );
  if (!utf8) return item('invalid_encoding', line, 'the line is not valid UTF-8', null);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return item('invalid_json_line', line, 'This line is not parseable as valid JSON.', null);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return item(
      'invalid_json_line',
      line,
      'the line must be a JSON object {custom_id, method, url, body}',
      null,
    );
  const request = value as Record<string, unknown>;
  const id = request.custom_id;
  if (id === undefined || id === null)
    return item('missing_required_parameter', line, "Missing required parameter: 'custom_id'.", 'custom_id');
  if (typeof id !== 'string' || id === '')
    return item(
      'invalid_custom_id',
      line,
      `custom_id must be a non-empty string, got ${JSON.stringify(id)}`,
      'custom_id',
    );
  const idBytes = Buffer.byteLength(id);
  if (idBytes > limits.maxCustomIdBytes)
    return item(
      'custom_id_too_long',
      line,
      `custom_id is ${idBytes} bytes; at most ${limits.maxCustomIdBytes} are allowed`,
      'custom_id',
    );
  if (ids.has(id))
    return item(
      'duplicate_custom_id',
      line,
      `custom_id ${JSON.stringify(id)} is used by an earlier line; each must be unique in the file`,
      'custom_id',
    );
  ids.add(id);
  if (request.method !== 'POST')
    return item(
      'invalid_method',
      line,
      `method must be "POST", got ${JSON.stringify(request.method)}`,
      'method',
    );
  const url = request.url;
  if (typeof url !== 'string' || !ENDPOINTS.has(url))
    return item(
      'invalid_url',
      line,
      `url must be one of ${ENGINE_ENDPOINTS.join(', ')}, got ${JSON.stringify(url)}`,
      'url',
    );
  if (url !== rules.endpoint)
    return item(
      'mismatched_endpoint',
      line,
      `url ${url} does not match the batch's endpoint ${rules.endpoint}`,
      'url',
    );
  const body = request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return item(
      'invalid_body',
      line,
      'body must be a JSON object (the request body of the endpoint)',
      'body',
    );
  const lineModel = (body as Record<string, unknown>).model;
  if (typeof lineModel !== 'string' || lineModel === '')
    return item(
      'missing_required_parameter',
      line,
      "Missing required parameter: 'body.model'.",
      'body.model',
    );
  if (model !== undefined && lineModel !== model)
    return item(
      'mismatched_model',
      line,
      `every line must use the same model: this line uses ${lineModel}, earlier lines ${model}`,
      'body.model',
    );
  if (rules.models && !rules.models.has(lineModel))
    return item(
      'model_not_found',
      line,
      `the model ${lineModel} is not offered for batches here`,
      'body.model',
    );
  return lineModel;
}

function item(code: string, line: number | null, message: string, param: string | null): BatchErrorItem {
  return { code, line, message, param };
}

function failed(errors: BatchErrorItem[]): Validation {
  return { kind: 'failed', errors };
}
