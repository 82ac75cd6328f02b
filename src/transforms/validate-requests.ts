import { Transform } from 'node:stream';
import { z } from 'zod';
import { type Refused, RequestRules, type Verdict } from '../core/requests/request-rules.js';
import { type WarningHandler, WarningLog } from '../internal/warnings.js';
import { parseOptions } from '../options.js';
import { ENDPOINTS, PROVIDER_NAMES, type ProviderProfile } from '../providers/profile.js';
import { resolveProfile } from '../providers/resolve-profile.js';
import type { Rejection, RequestItem, Row, SourcePosition } from '../types.js';
import { isProfile } from './to-requests.js';

const ValidateRequestsOptions = z.strictObject({
  /** Provider whose rules and limits apply (a name or a resolved profile). Default "local". */
  provider: z.union([z.enum(PROVIDER_NAMES), z.custom<ProviderProfile>(isProfile)]).default('local'),
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
export interface ValidateRequestsStream extends Transform {
  readonly warnings: WarningLog;
}

/**
 * Enforces the provider's rules on each request line before anything is uploaded: a JSON object,
 * custom_id present, a string, at most 256 bytes and unique in the run, method POST, url an offered
 * endpoint matching the batch's, a model the region offers (and of the right kind), a body of the right
 * shape, thinking flags well-typed, the line within 6 MB, and the prompt not plainly over the model's
 * context window. A line that breaks a rule comes out as a Rejection with a stable code; good lines come
 * out as RequestItems carrying their serialized text, so no later stage serializes again.
 * Accepts RequestItems (from toRequests), Rows whose values are request lines (a JSONL file of
 * requests read with jsonlSource), and Rejections (passed through).
 */
export function validateRequests(options: ValidateRequestsOptions = {}): ValidateRequestsStream {
  const opts = parseOptions(ValidateRequestsOptions, options, 'validateRequests');
  const profile = typeof opts.provider === 'string' ? resolveProfile(opts.provider) : opts.provider;
  const warnings = new WarningLog(opts.onWarning);
  const rules = new RequestRules(profile, opts, warnings);
  const stream = new Transform({
    objectMode: true,
    highWaterMark: 1024,
    transform(item: RequestItem | Row | Rejection, _encoding, done) {
      if (item.kind === 'rejection') return done(null, item);
      const verdict =
        item.kind === 'row'
          ? rules.check(item.values, item)
          : rules.check(item.request, item, item.text, item.bytes);
      if (verdict instanceof Promise) verdict.then((v) => done(null, toItem(v, item)), done);
      else done(null, toItem(verdict, item));
    },
    flush(done) {
      rules.close();
      done();
    },
    destroy(error, done) {
      rules.close();
      done(error);
    },
  }) as ValidateRequestsStream;
  Object.defineProperty(stream, 'warnings', { value: warnings, enumerable: true });
  return stream;
}

function toItem(verdict: Verdict, at: SourcePosition): RequestItem | Rejection {
  if (!verdict.ok) return toRejection(verdict, at);
  return {
    kind: 'request',
    index: at.index,
    file: at.file,
    line: at.line,
    request: verdict.request,
    text: verdict.text,
    bytes: verdict.bytes,
  };
}

export function toRejection(refused: Refused, at: SourcePosition): Rejection {
  return {
    kind: 'rejection',
    index: at.index,
    file: at.file,
    line: at.line,
    custom_id: refused.custom_id,
    code: refused.code,
    message: refused.message,
  };
}
