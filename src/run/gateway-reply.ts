import { BatchpipeError } from '../errors.js';

/**
 * A gateway's refusal under HTTP 200 (`success: false`), shaped like the SDK's errors where retry
 * decisions look: a `code` that reads as an HTTP status ("429", "503") is its `status`, so it is retried
 * (after a lookup) as that status would be; any other code is final.
 */
export class GatewayRefusal extends Error {
  override readonly name = 'GatewayRefusal';
  readonly status: number | undefined;
  readonly code: string | null;

  constructor(code: string | null, message: string) {
    super(`the gateway refused: code ${code ?? '(none)'}: ${message}`);
    this.code = code;
    const status = code !== null && /^[1-5]\d\d$/.test(code) ? Number(code) : undefined;
    this.status = status !== undefined && status >= 400 ? status : undefined;
  }
}

/**
 * The batch a gateway's create reply holds (ref/gateway-create-batch.txt): `{success, code, message,
 * data}` with `code` a string. `success: false`, even under HTTP 200, is a refusal with the gateway's
 * code and message; a reply without `data.id` is no batch.
 */
export function gatewayBatch<Batch extends { id: string }>(reply: unknown): Batch {
  const envelope = (reply ?? {}) as { success?: unknown; code?: unknown; message?: unknown; data?: unknown };
  const code = envelope.code === undefined || envelope.code === null ? null : String(envelope.code);
  const message = typeof envelope.message === 'string' ? envelope.message : '(no message)';
  if (envelope.success !== true) {
    if (envelope.success === false) throw new GatewayRefusal(code, message);
    throw new BatchpipeError(
      'BP_PROVIDER_HTTP',
      `the gateway's create reply is not its {success, code, message, data} envelope: ${preview(reply)}`,
    );
  }
  const data = envelope.data as { id?: unknown } | null | undefined;
  if (!data || typeof data.id !== 'string' || data.id === '')
    throw new BatchpipeError(
      'BP_PROVIDER_HTTP',
      `the gateway said success (code ${code ?? '(none)'}) but its data holds no batch id: ${preview(reply)}`,
    );
  return data as Batch;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

/**
 * A fetch for the openai SDK that reads a gateway's refusal envelope: the SDK takes an error's message
 * from the body's `error` field, which the envelope has not (it would say "no body"), so a refusal
 * `{success: false, code, message}` under an HTTP error status is handed on as `{error: {code,
 * message}}`, the status and headers (retry-after) kept.
 */
export function envelopeFetch(base: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const response = await base(input, init);
    if (response.ok) return response;
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const envelope = body as { success?: unknown; code?: unknown; message?: unknown; error?: unknown };
    const refusal = envelope && envelope.success === false && envelope.error === undefined;
    const headers = new Headers(response.headers);
    headers.delete('content-length');
    headers.delete('content-encoding');
    const out = refusal
      ? JSON.stringify({
          error: {
            code: envelope.code === undefined ? null : String(envelope.code),
            message: `the gateway refused: code ${String(envelope.code ?? '(none)')}: ${String(envelope.message ?? '(no message)')}`,
          },
        })
      : text;
    return new Response(out, { status: response.status, statusText: response.statusText, headers });
  };
}
