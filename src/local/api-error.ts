import { isStorageFailure } from '../internal/output-error.js';

/** The error body of the OpenAI API: `{error: {message, type, param, code}}`. */
export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/**
 * A refusal with an HTTP status, in the OpenAI API's shape. Thrown by handlers and turned into a
 * response in one place; anything else that escapes a handler is a bug and answers 500.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | null;
  readonly param: string | null;
  readonly type: string;
  /** Extra reply headers (`retry-after` on a 429). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    message: string,
    code: string | null = null,
    param: string | null = null,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
    this.type = errorType(status);
    this.headers = headers;
  }

  toBody(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

function errorType(status: number): string {
  if (status === 401) return 'invalid_request_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function badRequest(
  message: string,
  param: string | null = null,
  code: string | null = null,
): ApiError {
  return new ApiError(400, message, code, param);
}

export function notFound(message: string, param: string | null = null): ApiError {
  return new ApiError(404, message, null, param);
}

/**
 * The service's own disk refused a write (full, over quota, an I/O error): 507 Insufficient Storage,
 * saying so, rather than a bare 500 or a stored file cut short. Undefined for any other error.
 */
export function storageFailure(error: unknown): ApiError | undefined {
  const cause = (error as { cause?: unknown } | null)?.cause;
  const failure = isStorageFailure(error) ? error : isStorageFailure(cause) ? cause : undefined;
  if (failure === undefined) return undefined;
  const errno = (failure as NodeJS.ErrnoException).code;
  return new ApiError(
    507,
    `the service could not store the data: its disk refused the write (${errno}); nothing was stored, try again once there is space`,
    'insufficient_storage',
  );
}
