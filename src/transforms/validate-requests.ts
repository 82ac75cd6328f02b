import { z } from 'zod';
import { isRequestBatch, RequestBatch } from '../core/requests/request-batch.js';
import { RequestRules } from '../core/requests/request-rules.js';
import { type WarningHandler, WarningLog } from '../internal/warnings.js';
import { parseOptions } from '../options.js';
import { ENDPOINTS } from '../providers/profile.js';
import { profileOf, providerOption } from '../providers/resolve-profile.js';
import { BatchTransform } from '../streams/batch-transform.js';
import type { Rejection, RequestItem, RequestLine, Row } from '../types.js';

const ValidateRequestsOptions = z.strictObject({
  /** Provider whose rules and limits apply (a name or a resolved profile). Default "local". */
  provider: providerOption,
  /** The batch's endpoint; every line's url must match it. Default: the first valid line's url. */
  endpoint: z.enum(ENDPOINTS).optional(),
  /** Every line must use the first line's model (the per-file rule, for checking one file). Default false:
   *  shardRequests puts each model in its own files instead. */
  singleModel: z.boolean().default(false),
  /** Reject prompts that plainly exceed the model's context window, where the profile knows it. Default true. */
  checkContext: z.boolean().default(true),
  /** Warn about thinking models without an explicit enable_thinking. Default false (toRequests warns). */
  warnThinkingDefault: z.boolean().default(false),
  /** Called once per distinct warning. */
  onWarning: z.custom<WarningHandler>((value) => typeof value === 'function').optional(),
});
export type ValidateRequestsOptions = z.input<typeof ValidateRequestsOptions>;

/** The Transform `validateRequests` returns, with its warnings. */
export interface ValidateRequestsStream extends BatchTransform<RequestBatch, RequestBatch> {
  readonly warnings: WarningLog;
}

/**
 * Enforces the provider's rules on each request line before anything is uploaded: a JSON object,
 * custom_id present, a string, at most 256 characters and unique in the run, method POST, url an offered
 * endpoint matching the batch's, a model the region offers (and of the right kind), a body of the right
 * shape, thinking flags well-typed, the line within 6 MB, and the prompt not plainly over the model's
 * context window. A line that breaks a rule comes out as a Rejection with a stable code; good lines come
 * out as RequestItems carrying their serialized text, so no later stage serializes again.
 * Accepts RequestItems (from toRequests), Rows whose values are request lines (a JSONL file of
 * requests read with jsonlSource), Rejections (passed through), and batches of them from batchpipe's
 * own stages (checked a batch at a time: lines rendered from one template share one check of what
 * they all have in common).
 */
export function validateRequests(options: ValidateRequestsOptions = {}): ValidateRequestsStream {
  const opts = parseOptions(ValidateRequestsOptions, options, 'validateRequests');
  const warnings = new WarningLog(opts.onWarning);
  return new ValidateRequests(new RequestRules(profileOf(opts.provider), opts, warnings), warnings);
}

class ValidateRequests extends BatchTransform<RequestBatch, RequestBatch> implements ValidateRequestsStream {
  readonly warnings: WarningLog;
  readonly #rules: RequestRules;

  constructor(rules: RequestRules, warnings: WarningLog) {
    super();
    this.#rules = rules;
    this.warnings = warnings;
  }

  protected toBatch(chunk: unknown): RequestBatch {
    if (isRequestBatch(chunk)) return chunk;
    const batch = new RequestBatch();
    const item = chunk as RequestItem | Row | Rejection;
    if (item.kind === 'rejection') batch.addRejection(item);
    // A Row of a JSONL file of requests: its values are the line.
    else if (item.kind === 'row') batch.addRequest(item, item.values as unknown as RequestLine);
    else batch.addRequest(item, item.request, item.text);
    return batch;
  }

  protected process(batch: RequestBatch): RequestBatch | Promise<RequestBatch> {
    const waiting = this.#rules.checkBatch(batch);
    return waiting ? waiting.then(() => batch) : batch;
  }

  /** Good lines carry their serialized text on. */
  protected override itemOf(batch: RequestBatch, i: number): unknown {
    if (!batch.rejection(i)) batch.setText(i, batch.text(i));
    return batch.item(i);
  }

  protected override finish(done: (error?: Error | null) => void): void {
    this.#rules.close();
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.#rules.close();
    done(error);
  }
}
