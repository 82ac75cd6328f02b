import { codePointLength, exceedsCodePoints } from '../internal/code-points.js';
import type { FileLimits } from '../providers/profile.js';
import { type BatchEndpoint, DRY_RUN_ENDPOINT, ENGINE_ENDPOINTS } from './engine/engine.js';
import { type InputLine, readLines } from './line-reader.js';
import { offers } from './rules.js';

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
  endpoint: BatchEndpoint;
  /** The dry-run model: only dry runs may name it, and they may name no other. */
  dryRunModel: string | null;
  /** Models offered, or null for any. */
  models: ReadonlySet<string> | null;
  /** Problems reported before giving up on the file. */
  maxErrors: number;
}

const ENDPOINTS: ReadonlySet<string> = new Set(ENGINE_ENDPOINTS);
/** Says why a model is refused and how to accept any (the refusals of a sync call say it too). */
export const MODELS_HINT =
  "this local service offers its profile's models (dashscope: DashScope's list) or those it was started with; to take any model, run `batchpipe serve --models any` (commands in the same directory join it) or start it with models: 'any'";
/** Lines between checks of `halted` (a cancel or expiry stops validation too). */
const HALT_CHECK_LINES = 4096;

/** A line that passed every check, parsed. */
export interface CheckedLine {
  custom_id: string;
  body: Record<string, unknown>;
}

/**
 * The provider's file rules, one line at a time: scale (lines, bytes per line) and every line (UTF-8
 * JSON object, custom_id present, unique and short enough, method POST, url the batch's endpoint, one
 * model, an offered model). Memory holds the custom_ids of one file (bounded by the line limit).
 */
export class InputChecker {
  readonly #rules: InputRules;
  readonly #ids = new Set<string>();
  readonly #errors: BatchErrorItem[] = [];
  #model: string | undefined;
  #lines = 0;
  /** Every line names the same model (or fails as mixed): one model_not_found says it for all. */
  #modelRefused = false;

  constructor(rules: InputRules) {
    this.#rules = rules;
  }

  #inputs = 0;

  /** No problem found so far. */
  get clean(): boolean {
    return this.#errors.length === 0;
  }

  /** Enough problems found: reading on would not change the verdict. */
  get done(): boolean {
    return this.#errors.length >= this.#rules.maxErrors || this.#lines > this.#rules.limits.maxLinesPerFile;
  }

  /** The parsed request when the line is valid; null when it is not (the problem is kept). */
  check(line: InputLine): CheckedLine | null {
    this.#lines = line.line;
    const { limits } = this.#rules;
    if (line.line > limits.maxLinesPerFile) {
      this.#errors.push(
        item(
          'too_many_lines',
          line.line,
          `the input file holds more than ${limits.maxLinesPerFile} requests; split it into several files`,
          null,
        ),
      );
      return null;
    }
    const found = checkLine(line.text, line.bytes, line.utf8, line.line, this.#rules, this.#ids, this.#model);
    if ('problem' in found) {
      const once = found.problem.code === 'model_not_found';
      if (once && this.#modelRefused) return null;
      this.#modelRefused ||= once;
      if (this.#errors.length < this.#rules.maxErrors) this.#errors.push(found.problem);
      return null;
    }
    this.#model ??= found.model;
    const maxInputs = limits.maxEmbeddingInputsPerFile;
    if (maxInputs !== undefined && this.#rules.endpoint === '/v1/embeddings') {
      // OpenAI: "`/v1/embeddings` batches are also restricted to a maximum of 50,000 embedding inputs
      // across all requests in the batch" (ref/openai-batch-openapi.yaml).
      this.#inputs += inputCount(found.line.body.input);
      if (this.#inputs > maxInputs) {
        if (this.#errors.length < this.#rules.maxErrors)
          this.#errors.push(
            item(
              'too_many_embedding_inputs',
              line.line,
              `the batch's requests hold more than ${maxInputs} embedding inputs; split them into several files`,
              'body.input',
            ),
          );
        return null;
      }
    }
    return found.line;
  }

  /** The verdict on the whole file, once every line (or enough of them) was checked. */
  finish(): Validation {
    if (this.#errors.length > 0) return failed(this.#errors);
    if (this.#lines === 0 || this.#model === undefined)
      return failed([item('empty_file', null, 'the input file holds no requests', null)]);
    return { kind: 'ok', lines: this.#lines, model: this.#model };
  }
}

/** The file-size rule, checked before reading a byte. */
export function checkFileBytes(bytes: number, limits: FileLimits): Validation | null {
  if (bytes <= limits.maxBytesPerFile) return null;
  return failed([
    item(
      'file_too_large',
      null,
      `the input file is ${bytes} bytes; a file may hold at most ${limits.maxBytesPerFile} bytes`,
      null,
    ),
  ]);
}

/**
 * Checks a whole input file before any request runs, as the providers do ("the task validation
 * fails"). Streams the file.
 */
export async function validateInputFile(
  path: string,
  bytes: number,
  rules: InputRules,
  halted: () => boolean,
): Promise<Validation> {
  const tooLarge = checkFileBytes(bytes, rules.limits);
  if (tooLarge) return tooLarge;
  const checker = new InputChecker(rules);
  outer: for await (const chunk of readLines(path, { maxLineBytes: rules.limits.maxLineBytes })) {
    for (const line of chunk) {
      if (line.line % HALT_CHECK_LINES === 0 && halted()) return { kind: 'halted' };
      checker.check(line);
      if (checker.done) break outer;
    }
  }
  if (halted()) return { kind: 'halted' };
  return checker.finish();
}

type LineVerdict = { model: string; line: CheckedLine } | { problem: BatchErrorItem };

/** The line parsed with its model when it is valid, or what is wrong with it. */
function checkLine(
  text: string | null,
  bytes: number,
  utf8: boolean,
  line: number,
  rules: InputRules,
  ids: Set<string>,
  model: string | undefined,
): LineVerdict {
  const { limits } = rules;
  if (text === null || bytes > limits.maxLineBytes)
    return bad(
      'line_too_large',
      line,
      `the line is ${bytes} bytes; a line may hold at most ${limits.maxLineBytes} bytes`,
      null,
    );
  if (!utf8) return bad('invalid_encoding', line, 'the line is not valid UTF-8', null);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad('invalid_json_line', line, 'This line is not parseable as valid JSON.', null);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return bad(
      'invalid_json_line',
      line,
      'the line must be a JSON object {custom_id, method, url, body}',
      null,
    );
  const request = value as Record<string, unknown>;
  const id = request.custom_id;
  if (id === undefined || id === null)
    return bad('missing_required_parameter', line, "Missing required parameter: 'custom_id'.", 'custom_id');
  if (typeof id !== 'string' || id === '')
    return bad(
      'invalid_custom_id',
      line,
      `custom_id must be a non-empty string, got ${JSON.stringify(id)}`,
      'custom_id',
    );
  // "The custom_id supports a maximum of 256 characters": code points (ref/modelstudio-batch-file-input.txt).
  if (exceedsCodePoints(id, limits.maxCustomIdChars))
    return bad(
      'custom_id_too_long',
      line,
      `custom_id is ${codePointLength(id)} characters; at most ${limits.maxCustomIdChars} are allowed`,
      'custom_id',
    );
  if (ids.has(id))
    return bad(
      'duplicate_custom_id',
      line,
      `custom_id ${JSON.stringify(id)} is used by an earlier line; each must be unique in the file`,
      'custom_id',
    );
  ids.add(id);
  if (request.method !== 'POST')
    return bad(
      'invalid_method',
      line,
      `method must be "POST", got ${JSON.stringify(request.method)}`,
      'method',
    );
  const url = request.url;
  if (typeof url !== 'string' || !(ENDPOINTS.has(url) || url === rules.endpoint))
    return bad(
      'invalid_url',
      line,
      `url must be one of ${[...ENGINE_ENDPOINTS, ...(rules.dryRunModel ? [DRY_RUN_ENDPOINT] : [])].join(', ')}, got ${JSON.stringify(url)}`,
      'url',
    );
  if (url !== rules.endpoint)
    return bad(
      'mismatched_endpoint',
      line,
      `url ${url} does not match the batch's endpoint ${rules.endpoint}`,
      'url',
    );
  const body = request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return bad('invalid_body', line, 'body must be a JSON object (the request body of the endpoint)', 'body');
  const lineModel = (body as Record<string, unknown>).model;
  if (typeof lineModel !== 'string' || lineModel === '')
    return bad('missing_required_parameter', line, "Missing required parameter: 'body.model'.", 'body.model');
  if (model !== undefined && lineModel !== model)
    return bad(
      'mismatched_model',
      line,
      `every line must use the same model: this line uses ${lineModel}, earlier lines ${model}`,
      'body.model',
    );
  if (
    rules.dryRunModel !== null &&
    (lineModel === rules.dryRunModel) !== (rules.endpoint === DRY_RUN_ENDPOINT)
  )
    return bad(
      'model_not_found',
      line,
      rules.endpoint === DRY_RUN_ENDPOINT
        ? `a dry run (endpoint ${DRY_RUN_ENDPOINT}) takes model ${rules.dryRunModel} only, got ${lineModel}`
        : `the model ${lineModel} only checks files: create the batch with endpoint ${DRY_RUN_ENDPOINT}`,
      'body.model',
    );
  if (!offers(rules.models, lineModel))
    return bad(
      'model_not_found',
      line,
      `the model ${lineModel} is not offered for batches here: ${MODELS_HINT}`,
      'body.model',
    );
  return { model: lineModel, line: { custom_id: id, body: body as Record<string, unknown> } };
}

function bad(code: string, line: number | null, message: string, param: string | null): LineVerdict {
  return { problem: item(code, line, message, param) };
}

function item(code: string, line: number | null, message: string, param: string | null): BatchErrorItem {
  return { code, line, message, param };
}

function failed(errors: BatchErrorItem[]): Validation {
  return { kind: 'failed', errors };
}

/** Inputs an embeddings request embeds: a string or a token array is one, an array of them its length. */
function inputCount(input: unknown): number {
  if (!Array.isArray(input) || input.length === 0 || input.every((x) => typeof x === 'number')) return 1;
  return input.length;
}
