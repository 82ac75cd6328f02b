/**
 * Stable error and rejection codes. Match on `code`, never on message text: messages may improve,
 * a code never changes meaning (retired codes are not reused). Each code has a row in docs/errors.md.
 */
export const ERROR_CODES = [
  // usage and options
  'BP_INVALID_OPTION',
  'BP_USAGE',
  // reading input
  'BP_INPUT_NOT_FOUND',
  'BP_INPUT_READ',
  'BP_INPUT_ENCODING',
  'BP_INPUT_HEADER',
  'BP_INPUT_PARSE',
  'BP_ROW_FIELD_COUNT',
  'BP_ROW_NOT_OBJECT',
  'BP_ROW_TOO_LARGE',
  // building requests
  'BP_TEMPLATE_SYNTAX',
  'BP_TEMPLATE_MISSING_COLUMN',
  'BP_ID_COLUMN_MISSING',
  'BP_MAPPER_FAILED',
  'BP_MEDIA_INVALID',
  // validating request lines (provider rules)
  'BP_LINE_NOT_UTF8',
  'BP_LINE_NOT_JSON',
  'BP_LINE_NOT_OBJECT',
  'BP_LINE_TOO_LARGE',
  'BP_CUSTOM_ID_MISSING',
  'BP_CUSTOM_ID_INVALID',
  'BP_CUSTOM_ID_TOO_LONG',
  'BP_DUPLICATE_CUSTOM_ID',
  'BP_METHOD_INVALID',
  'BP_URL_INVALID',
  'BP_ENDPOINT_MISMATCH',
  'BP_ENDPOINT_NOT_OFFERED',
  'BP_MODEL_MISSING',
  'BP_MODEL_NOT_OFFERED',
  'BP_MODEL_NOT_VISION',
  'BP_MODEL_MIXED',
  'BP_BODY_INVALID',
  'BP_THINKING_INVALID',
  'BP_CONTEXT_EXCEEDED',
  // files
  'BP_FILE_EMPTY',
  'BP_FILE_TOO_MANY_LINES',
  'BP_FILE_TOO_LARGE',
  'BP_NOTHING_TO_SUBMIT',
  'BP_OUTPUT_WRITE',
  'BP_OUTPUT_PATH',
  // runs
  'BP_RUN_NOT_FOUND',
  'BP_RUN_MISMATCH',
  'BP_RUN_LOCKED',
  'BP_CACHE',
  'BP_RUN_DIR_GONE',
  'BP_MANIFEST_CORRUPT',
  'BP_PROVIDER_HTTP',
  'BP_PROVIDER_UNREACHABLE',
  'BP_LOOKUP_FAILED',
  'BP_RUN_UNVERIFIABLE',
  'BP_STORAGE_FULL',
  'BP_BATCH_FAILED',
  'BP_BATCH_STUCK',
  // results and the join
  'BP_RESULT_PARSE',
  'BP_RESULT_INVALID',
  'BP_RESULT_MISSING',
  'BP_NO_ANSWERS',
  'BP_OUTPUT_NOT_JSON',
  'BP_OUTPUT_SCHEMA',
  'BP_OUTPUT_REFUSED',
  'BP_OUTPUT_FILTERED',
  'BP_JOIN_SOURCE_CHANGED',
  'BP_RESULT_STALE',
  // cost
  'BP_COST_LIMIT',
  'BP_PRICES_INVALID',
  // the local service
  'BP_SERVICE_START',
  'BP_SERVICE_STATE',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Where a failure happened. Plain JSON, so it survives logs, rejection files and run manifests. */
export interface ErrorContext {
  file?: string;
  line?: number;
  row?: number;
  column?: string;
  custom_id?: string;
  option?: string;
  status?: number;
  request_id?: string;
  batch_id?: string;
}

/** The one error class batchpipe throws; `code` is the contract, `context` says where. */
export class BatchpipeError extends Error {
  override readonly name = 'BatchpipeError';
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, options?: ErrorOptions) {
    super(withLocation(message, context), options);
    this.code = code;
    this.context = context;
  }

  toJSON(): { code: ErrorCode; message: string; context: ErrorContext } {
    return { code: this.code, message: this.message, context: this.context };
  }
}

function withLocation(message: string, context: ErrorContext): string {
  if (!context.file) return message;
  // A whole file (an output that cannot be written) has no line to name.
  return context.line === undefined
    ? `${context.file}: ${message}`
    : `${context.file}:${context.line}: ${message}`;
}

/**
 * An error as plain data for another thread (its message without the location the constructor adds:
 * `new BatchpipeError(code, message, context)` on the other side makes the same error again).
 */
export function errorData(error: unknown): { code: ErrorCode; message: string; context: ErrorContext } {
  if (!isBatchpipeError(error))
    return { code: 'BP_INPUT_READ', message: (error as Error)?.message ?? String(error), context: {} };
  const { file, line } = error.context;
  const prefix = file ? (line === undefined ? `${file}: ` : `${file}:${line}: `) : '';
  const message =
    prefix && error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  return { code: error.code, message, context: error.context };
}

export function isBatchpipeError(error: unknown): error is BatchpipeError {
  return error instanceof BatchpipeError;
}
