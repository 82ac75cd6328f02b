import { isDeepStrictEqual } from 'node:util';
import type { ErrorCode } from '../../errors.js';
import { codePointLength, exceedsCodePoints } from '../../internal/code-points.js';
import { tooDeepAt, tooDeepMessage } from '../../internal/json-depth.js';
import { SeenIds } from '../../internal/seen-ids.js';
import { loadTokenCounter, type TokenCounter } from '../../internal/tokens.js';
import { type WarningCode, WarningLog } from '../../internal/warnings.js';
import { describeValue } from '../../options.js';
import { ENDPOINTS, type Endpoint, type ModelInfo, type ProviderProfile } from '../../providers/profile.js';
import { findModel, snapshotOf, thinksByDefault } from '../../providers/resolve-profile.js';
import type { Rejection, RequestLine, SourcePosition } from '../../types.js';
import { embeddingInputs } from './embedding-inputs.js';
import type { LineTemplate } from './line-template.js';
import { hasVisionParts } from './media.js';
import type { RequestBatch } from './request-batch.js';
import type { Refused, Verdict } from './verdict.js';

export type { Accepted, Refused, Verdict } from './verdict.js';

export interface RuleOptions {
  /** The run's endpoint; default: the first accepted line's url. */
  endpoint?: Endpoint | undefined;
  /** Enforce one model across everything checked (the per-file rule, when checking one file). */
  singleModel: boolean;
  /** Reject prompts that plainly exceed a known context window. */
  checkContext: boolean;
  /** Warn about thinking models without an explicit enable_thinking (for files built elsewhere). */
  warnThinkingDefault: boolean;
  /** Where custom_ids must be unique: the run (default; the join needs it) or one file (the provider rule). */
  idScope?: 'run' | 'file';
  /** The ids of earlier files of the same run, shared so duplicates across files are found too. */
  seenIds?: SeenIds;
}

const ROLES = new Set(['system', 'user', 'assistant', 'tool', 'developer', 'function']);
const KNOWN_ENDPOINTS = new Set<string>(ENDPOINTS);

// The proxy tokenizer (o200k_base) and a provider's own differ by up to ~20% on ordinary text;
// "plainly cannot fit" means more than that over the window.
const CONTEXT_MARGIN = 1.2;

/**
 * The provider's per-line and per-run rules, checked in the order the provider would trip on them.
 * Stateful: custom_ids must be unique across the whole run (the join depends on it), and with
 * `singleModel` every line must name the first line's model.
 */
export class RequestRules {
  readonly #profile: ProviderProfile;
  readonly #opts: RuleOptions;
  readonly #warnings: WarningLog;
  readonly #ids: SeenIds;
  readonly #ownIds: boolean;
  readonly #models = new Map<string, ModelVerdict>();
  readonly #windows = new Map<string, number>();
  #lastModel: { model: string; url: string; verdict: ModelVerdict } | undefined;
  /** Profiles other lines were checked under, and whether they are this one. */
  readonly #sameProfile = new WeakMap<ProviderProfile, boolean>();
  #endpoint: string | undefined;
  #model: { id: string; first: SourcePosition } | undefined;
  #tokens: TokenCounter | undefined;

  constructor(profile: ProviderProfile, opts: RuleOptions, warnings: WarningLog) {
    this.#profile = profile;
    this.#opts = opts;
    this.#warnings = warnings;
    this.#endpoint = opts.endpoint;
    this.#ids = opts.seenIds ?? new SeenIds();
    this.#ownIds = opts.seenIds === undefined;
  }

  /** Checks one candidate line. `text`/`bytes` are its stored form when it came from a file. */
  check(line: unknown, at: SourcePosition, text?: string, bytes?: number): Verdict | Promise<Verdict> {
    const refused = this.checkStatic(line, at);
    if (refused) return refused;
    const candidate = line as Record<string, unknown> & {
      custom_id: string;
      url: string;
      body: Record<string, unknown>;
    };
    const id = candidate.custom_id;
    text ??= JSON.stringify(line);
    bytes ??= Buffer.byteLength(text);
    const tooLarge = this.checkLineBytes(bytes, id);
    if (tooLarge) return tooLarge;
    const model = candidate.body.model as string;
    const window = this.contextWindow(model);
    if (window !== undefined) {
      const prompt = promptText(candidate.body, candidate.url);
      // A token covers at least one UTF-8 byte and a UTF-16 unit at most 3 bytes: short prompts fit.
      if (prompt.length * 3 > window && Buffer.byteLength(prompt) > window) {
        const finish = (): Verdict =>
          this.checkContext(prompt, model, window, id) ??
          this.#accept(candidate, model, at, id, text!, bytes!);
        return this.#tokens ? finish() : this.loadTokens().then(finish);
      }
    }
    return this.#accept(candidate, model, at, id, text, bytes);
  }

  /**
   * Every rule that depends on the line alone, not on the rest of the run or its size: what a line
   * built from a template breaks, every line from that template breaks.
   */
  checkStatic(line: unknown, at: SourcePosition, warnings = this.#warnings): Refused | undefined {
    if (line === null || typeof line !== 'object' || Array.isArray(line)) {
      return refuse(
        null,
        'BP_LINE_NOT_OBJECT',
        `expected a JSON object, got ${Array.isArray(line) ? 'an array' : describeValue(line)}`,
      );
    }
    const candidate = line as Record<string, unknown>;
    const id = candidate.custom_id;
    if (id === undefined) return refuse(null, 'BP_CUSTOM_ID_MISSING', 'custom_id is missing');
    if (typeof id !== 'string')
      return refuse(null, 'BP_CUSTOM_ID_INVALID', `custom_id must be a string, got ${describeValue(id)}`);
    if (id === '') return refuse(id, 'BP_CUSTOM_ID_INVALID', 'custom_id is empty');
    // "The custom_id supports a maximum of 256 characters" (ref/modelstudio-batch-file-input.txt).
    const max = this.#profile.limits.maxCustomIdChars;
    if (exceedsCodePoints(id, max))
      return refuse(
        id,
        'BP_CUSTOM_ID_TOO_LONG',
        `custom_id is ${codePointLength(id)} characters, at most ${max} allowed`,
      );
    if (candidate.method !== 'POST') {
      return refuse(id, 'BP_METHOD_INVALID', `method must be "POST", got ${describeValue(candidate.method)}`);
    }
    const url = candidate.url;
    const dryRun = this.#profile.dryRun;
    if (dryRun && url === dryRun.endpoint) {
      // The free format check (batch-test-model on /v1/chat/ds-test) takes chat bodies.
      const body = candidate.body as Record<string, unknown> | null;
      if (body?.model !== dryRun.model) {
        return refuse(
          id,
          'BP_MODEL_NOT_OFFERED',
          `${url} is the dry-run endpoint; it takes model ${dryRun.model}, got ${describeValue(body?.model)}`,
        );
      }
      return chatShape(body) === undefined ? undefined : refuse(id, 'BP_BODY_INVALID', chatShape(body)!);
    }
    if (typeof url !== 'string' || !KNOWN_ENDPOINTS.has(url)) {
      return refuse(
        id,
        'BP_URL_INVALID',
        `url must be one of ${this.#profile.endpoints.join(', ')}, got ${describeValue(url)}`,
      );
    }
    if (!this.#profile.endpoints.includes(url as Endpoint)) {
      return refuse(
        id,
        'BP_ENDPOINT_NOT_OFFERED',
        `${this.#profile.title} does not offer ${url} for batches (offered: ${this.#profile.endpoints.join(', ')})`,
      );
    }
    if (this.#endpoint !== undefined && url !== this.#endpoint) {
      return refuse(
        id,
        'BP_ENDPOINT_MISMATCH',
        `url is ${url} but the batch endpoint is ${this.#endpoint}; one batch serves one endpoint`,
      );
    }
    const body = candidate.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return refuse(id, 'BP_BODY_INVALID', `body must be a JSON object, got ${describeValue(body)}`);
    }
    // The provider refuses it (the local service: 400), and the checks below would recurse into it.
    const deep = tooDeepAt(body);
    if (deep !== undefined) return refuse(id, 'BP_BODY_INVALID', tooDeepMessage('body', deep));
    const fields = body as Record<string, unknown>;
    const model = fields.model;
    if (typeof model !== 'string' || model === '') {
      return refuse(
        id,
        'BP_MODEL_MISSING',
        `body.model must be a non-empty string, got ${describeValue(model)}`,
      );
    }
    const known = this.#modelVerdict(model, url);
    if (known.refusal) return refuse(id, known.refusal.code, known.refusal.message);
    if (known.snapshot)
      warnings.warn('BP_WARN_MODEL_SNAPSHOT', snapshotWarning(this.#profile, model, known.snapshot), {
        file: at.file,
        line: at.line,
        row: at.index,
        custom_id: id,
      });
    if (this.#opts.singleModel && this.#model && this.#model.id !== model) {
      const first = this.#model.first;
      return refuse(
        id,
        'BP_MODEL_MIXED',
        `body.model is ${model} but line ${first.line} uses ${this.#model.id}; all requests in a file must use the same model`,
      );
    }
    const shape =
      url === '/v1/embeddings'
        ? embeddingShape(fields, this.#profile)
        : url === '/v1/chat/completions'
          ? chatShape(fields)
          : undefined;
    if (shape) return refuse(id, 'BP_BODY_INVALID', shape);
    if (url === '/v1/chat/completions' && hasVisionParts(fields)) {
      const textOnly = textOnlyRefusal(known.info ?? snapshotOf(this.#profile, model), model);
      if (textOnly) return refuse(id, textOnly.code, textOnly.message);
    }
    const thinking = this.#thinking(fields, model, at, id, warnings);
    if (thinking) return refuse(id, 'BP_THINKING_INVALID', thinking);
    return undefined;
  }

  /** The line size rule. */
  checkLineBytes(bytes: number, id: string): Refused | undefined {
    const max = this.#profile.limits.maxLineBytes;
    return bytes > max
      ? refuse(id, 'BP_LINE_TOO_LARGE', `line is ${bytes} bytes, at most ${max} allowed`)
      : undefined;
  }

  /** The model's context window, when the profile knows it and context checks are on. */
  contextWindow(model: string): number | undefined {
    if (!this.#opts.checkContext) return undefined;
    let window = this.#windows.get(model);
    if (window === undefined) {
      window = findModel(this.#profile, model)?.contextWindow ?? 0;
      this.#windows.set(model, window);
    }
    return window === 0 ? undefined : window;
  }

  /** Whether the tokenizer is loaded (`checkContext` needs it). */
  get tokensLoaded(): boolean {
    return this.#tokens !== undefined;
  }

  async loadTokens(): Promise<void> {
    this.#tokens ??= await loadTokenCounter();
  }

  /** The context rule, for a prompt already known to be longer than the window in bytes. Needs `loadTokens`. */
  checkContext(prompt: string, model: string, window: number, id: string): Refused | undefined {
    const limit = Math.floor(window * CONTEXT_MARGIN);
    const tokens = this.#tokens!(prompt, limit);
    if (tokens <= limit) return undefined;
    return refuse(
      id,
      'BP_CONTEXT_EXCEEDED',
      `prompt is over ${limit} tokens (estimated), but ${model} takes at most ${window} per request`,
    );
  }

  /**
   * Claims a custom_id for a row: refused when an earlier row holds it, naming that row's line (and
   * file, when it is another). Ids are kept as compact hashes with their position, on disk past 256k,
   * so memory stays flat whatever the run's size.
   */
  claimId(id: string, at: SourcePosition): Refused | undefined {
    const earlier = this.#ids.claim(id, at.file, at.line);
    if (earlier === undefined) return undefined;
    const sameFile = earlier.file === at.file;
    const holder =
      earlier.line === undefined
        ? 'an earlier row'
        : sameFile
          ? `line ${earlier.line}`
          : `${earlier.file}:${earlier.line}`;
    const rule =
      this.#opts.idScope === 'file' && sameFile
        ? 'custom_ids must be unique within a file'
        : 'custom_ids must be unique across the run (results are joined back by them)';
    return refuse(id, 'BP_DUPLICATE_CUSTOM_ID', `custom_id "${id}" is already used by ${holder}; ${rule}`);
  }

  /** Lets go of what the rules keep on disk (a large run's custom_ids), unless they are shared. */
  close(): void {
    if (this.#ownIds) this.#ids.close();
  }

  /**
   * Checks every request of a batch, in order, turning each that breaks a rule into a rejection in
   * place; good entries keep (or, built as objects, get) their serialized text. Lines rendered from one
   * template are checked against the rules every such line shares once per batch, then for what
   * differs (size, context, id). A promise when it must wait for the tokenizer.
   */
  checkBatch(batch: RequestBatch): Promise<void> | undefined {
    return this.#checkFrom(batch, 0, {
      template: undefined,
      refusal: undefined,
      warnings: [],
      warned: -1,
      replayed: 0,
    });
  }

  #checkFrom(batch: RequestBatch, from: number, shared: TemplateVerdict): Promise<void> | undefined {
    for (let i = from; i < batch.length; i++) {
      if (batch.rejection(i)) continue;
      const own = !batch.rendered(i)
        ? UNCHECKED
        : batch.template
          ? this.#checkRendered(batch, i, shared)
          : this.#checkMapped(batch, i, shared);
      if (own !== UNCHECKED) {
        if (own === NEEDS_TOKENS) return this.loadTokens().then(() => this.#checkFrom(batch, i, shared));
        if (own) batch.reject(i, rejectionOf(own, batch.position(i)));
        continue;
      }
      const text = batch.storedText(i);
      const verdict = this.check(
        batch.request(i),
        batch.position(i),
        text,
        text === undefined ? undefined : Buffer.byteLength(text),
      );
      if (verdict instanceof Promise)
        return verdict.then((settled) => {
          settle(batch, i, settled);
          return this.#checkFrom(batch, i + 1, shared);
        });
      settle(batch, i, verdict);
    }
    return undefined;
  }

  /** A rendered line's verdict: the template's shared one, then its own size, context and id. */
  #checkRendered(
    batch: RequestBatch,
    i: number,
    shared: TemplateVerdict,
  ): Refused | undefined | typeof NEEDS_TOKENS {
    const template = batch.template!;
    if (shared.template !== template) {
      const log = new WarningLog();
      shared.template = template;
      shared.refusal = this.checkStatic(template.request, batch.position(i), log);
      shared.warnings = log.list().map(({ code, message }) => ({ code, message }));
    }
    // The id and position are made only where a line is refused or warned about (a row-<n> id is
    // a string made on the spot: a million of them, for nothing, on the reading thread).
    if (shared.refusal) return { ...shared.refusal, custom_id: batch.id(i) };
    // Once per line, as checking each line's request would (a retry after the tokenizer loads is not a new line).
    if (shared.warned !== i) {
      shared.warned = i;
      for (const w of shared.warnings) {
        const at = batch.position(i);
        this.#warnings.warn(w.code, w.message, {
          file: at.file,
          line: at.line,
          row: at.index,
          custom_id: batch.id(i),
        });
      }
    }
    if (template.url === '/v1/embeddings' && batch.emptyInput(i))
      return refuse(batch.id(i), 'BP_BODY_INVALID', embeddingShape({ input: '' })!);
    return this.#checkOwn(batch, i);
  }

  /**
   * A mapper's line checked on another thread against the rules it breaks alone: trusted when they
   * are this run's rules (the same profile, and no rule here that depends on other lines or warns
   * more), then checked for what depends on the run. Otherwise UNCHECKED: checked as any line is.
   */
  #checkMapped(
    batch: RequestBatch,
    i: number,
    shared: TemplateVerdict,
  ): Refused | undefined | typeof NEEDS_TOKENS | typeof UNCHECKED {
    const alone = batch.checkedAlone;
    const url = batch.url(i);
    if (!alone || !this.#trusts(alone.profile) || (this.#endpoint !== undefined && url !== this.#endpoint))
      return UNCHECKED;
    // The warnings the checks there raised for this line, once (a retry after the tokenizer loads is not a new line).
    const warnings = alone.warnings;
    while (shared.replayed < warnings.length && warnings[shared.replayed]![0] <= i) {
      const [at, call] = warnings[shared.replayed++]!;
      if (at === i) this.#warnings.warn(...call);
    }
    return alone.refusals.get(i) ?? this.#checkOwn(batch, i);
  }

  /** Whether lines checked alone under `profile` need no check here of what they broke alone. */
  #trusts(profile: ProviderProfile): boolean {
    if (this.#opts.singleModel || this.#opts.warnThinkingDefault) return false;
    if (profile === this.#profile) return true;
    let same = this.#sameProfile.get(profile);
    if (same === undefined) {
      same = isDeepStrictEqual(profile, this.#profile);
      this.#sameProfile.set(profile, same);
    }
    return same;
  }

  /** The rules a rendered line can break on its own account: its size, its prompt's tokens, its id. */
  #checkOwn(batch: RequestBatch, i: number): Refused | undefined | typeof NEEDS_TOKENS {
    const url = batch.url(i);
    const model = batch.model(i);
    const bytes = batch.end(i) - batch.start(i) - 1;
    if (bytes > this.#profile.limits.maxLineBytes) return this.checkLineBytes(bytes, batch.id(i));
    const window = this.contextWindow(model);
    if (window !== undefined && bytes > window) {
      const prompt = promptText(batch.request(i).body as Record<string, unknown>, url);
      if (prompt.length * 3 > window && Buffer.byteLength(prompt) > window) {
        if (!this.#tokens) return NEEDS_TOKENS;
        const over = this.checkContext(prompt, model, window, batch.id(i));
        if (over) return over;
      }
    }
    if (!batch.uniqueIds) {
      const duplicate = this.claimId(batch.id(i), batch.position(i));
      if (duplicate) return duplicate;
    }
    this.#endpoint ??= url;
    this.#model ??= { id: model, first: batch.position(i) };
    return undefined;
  }

  #accept(
    line: Record<string, unknown>,
    model: string,
    at: SourcePosition,
    id: string,
    text: string,
    bytes: number,
  ): Verdict {
    const duplicate = this.claimId(id, at);
    if (duplicate) return duplicate;
    this.#endpoint ??= line.url as string;
    this.#model ??= { id: model, first: at };
    return { ok: true, request: line as unknown as RequestLine, text, bytes };
  }

  #modelVerdict(model: string, url: string): ModelVerdict {
    // Lines of a run nearly always name one model: the last answer is kept apart from the map, whose
    // key would be a new string to hash on every line.
    const last = this.#lastModel;
    if (last !== undefined && last.model === model && last.url === url) return last.verdict;
    const verdict = this.#verdictOf(model, url);
    this.#lastModel = { model, url, verdict };
    return verdict;
  }

  #verdictOf(model: string, url: string): ModelVerdict {
    const key = `${url} ${model}`;
    let verdict = this.#models.get(key);
    if (verdict) return verdict;
    const snapshot = this.#profile.modelsExclusive ? snapshotOf(this.#profile, model)?.id : undefined;
    verdict = {
      info: findModel(this.#profile, model),
      refusal: modelRefusal(this.#profile, model, url),
      snapshot,
    };
    this.#models.set(key, verdict);
    return verdict;
  }

  #thinking(
    body: Record<string, unknown>,
    model: string,
    at: SourcePosition,
    id: string,
    warnings: WarningLog,
  ): string | undefined {
    const enable = body.enable_thinking;
    if (enable !== undefined && typeof enable !== 'boolean')
      return `enable_thinking must be true or false, got ${describeValue(enable)}`;
    const budget = body.thinking_budget;
    if (budget !== undefined && !(Number.isInteger(budget) && (budget as number) > 0)) {
      return `thinking_budget must be a positive integer, got ${describeValue(budget)}`;
    }
    const extra = body.extra_body;
    const where = { file: at.file, line: at.line, row: at.index, custom_id: id };
    if (
      extra !== null &&
      typeof extra === 'object' &&
      ('enable_thinking' in extra || 'thinking_budget' in extra)
    ) {
      warnings.warn(
        'BP_WARN_THINKING_IN_EXTRA_BODY',
        'enable_thinking/thinking_budget are inside extra_body, where batch requests ignore them; put them at the top level of body',
        where,
      );
    }
    if (this.#opts.warnThinkingDefault && enable === undefined && thinksByDefault(this.#profile, model)) {
      warnings.warn(
        'BP_WARN_THINKING_DEFAULT',
        `model ${model} thinks by default and thinking tokens bill as output; set enable_thinking explicitly`,
        where,
      );
    }
    return undefined;
  }
}

interface ModelVerdict {
  info: ModelInfo | undefined;
  refusal: Refusal | undefined;
  /** The listed model a dated snapshot id pins, when the profile lists models and not this id. */
  snapshot: string | undefined;
}

/** BP_WARN_MODEL_SNAPSHOT's message: accepted by batchpipe's policy, not by the documents' list. */
export function snapshotWarning(profile: ProviderProfile, model: string, base: string): string {
  return `${model} is a dated snapshot of ${base}; ${profile.title} lists ${base}, not its snapshots. batchpipe accepts it (its policy, not the documents'): the provider decides, and fails the batch if it does not offer it`;
}

/** Why a setting cannot work with a provider. */
export interface Refusal {
  code: ErrorCode;
  message: string;
}

/** Why the profile refuses `model` on `url`: not offered in its region, or of the wrong kind. */
export function modelRefusal(profile: ProviderProfile, model: string, url: string): Refusal | undefined {
  const info = findModel(profile, model) ?? snapshotOf(profile, model);
  const dryRun = profile.dryRun;
  if (!info && profile.modelsExclusive && !(dryRun && model === dryRun.model)) {
    const offered = profile.models.map((m) => m.id).join(', ');
    return {
      code: 'BP_MODEL_NOT_OFFERED',
      message: `${model} is not offered for batches by ${profile.title}, provider "${profile.name}" (offered: ${offered}); if the list changed, add it with the models option`,
    };
  }
  if (info && (info.kind === 'embedding') !== (url === '/v1/embeddings')) {
    return {
      code: 'BP_MODEL_NOT_OFFERED',
      message: `${model} is ${info.kind === 'embedding' ? 'an embedding' : 'a chat'} model; it cannot serve ${url}`,
    };
  }
  return undefined;
}

/** Whether a model takes images (and video frames): a vision model, or a chat model said to. */
export function takesImages(info: ModelInfo): boolean {
  return info.kind === 'vision' || info.images === true;
}

/** Why a model the profile knows to take text only cannot serve a request with images or video. */
function textOnlyRefusal(info: ModelInfo | undefined, model: string): Refusal | undefined {
  if (!info || takesImages(info)) return undefined;
  return {
    code: 'BP_MODEL_NOT_VISION',
    message: `${model} takes text only, but the request carries images or video; use a vision model (such as qwen-vl-plus), or add the model with the models option if it does take images`,
  };
}

/**
 * Why a run's settings cannot work with the provider whatever the rows hold: an endpoint the profile
 * does not offer for batches, or a model it does not offer (or of the wrong kind) on that endpoint.
 */
export function settingsRefusal(
  profile: ProviderProfile,
  endpoint: Endpoint,
  model: string | undefined,
  vision = false,
): Refusal | undefined {
  if (!profile.endpoints.includes(endpoint)) {
    return {
      code: 'BP_ENDPOINT_NOT_OFFERED',
      message: `endpoint ${endpoint} is not offered for batches by ${profile.title}, provider "${profile.name}" (offered: ${profile.endpoints.join(', ')})`,
    };
  }
  if (model === undefined) return undefined;
  const refused =
    modelRefusal(profile, model, endpoint) ??
    (vision ? textOnlyRefusal(findModel(profile, model) ?? snapshotOf(profile, model), model) : undefined);
  return refused && { code: refused.code, message: `model ${refused.message}` };
}

function refuse(custom_id: string | null, code: ErrorCode, message: string): Refused {
  return { ok: false, custom_id, code, message };
}

function chatShape(body: Record<string, unknown>): string | undefined {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    return `body.messages must be a non-empty array, got ${describeValue(messages)}`;
  }
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i] as Record<string, unknown> | null;
    if (message === null || typeof message !== 'object' || Array.isArray(message)) {
      return `body.messages[${i}] must be an object, got ${describeValue(message)}`;
    }
    if (typeof message.role !== 'string' || !ROLES.has(message.role)) {
      return `body.messages[${i}].role must be one of ${[...ROLES].join(', ')}, got ${describeValue(message.role)}`;
    }
    const content = message.content;
    const contentOk =
      typeof content === 'string' ||
      (Array.isArray(content) && content.length > 0) ||
      (content == null && (message.role === 'assistant' || message.role === 'function'));
    if (!contentOk)
      return `body.messages[${i}].content must be a string or a non-empty array of parts, got ${describeValue(content)}`;
  }
  return undefined;
}

/**
 * An embeddings body's input, in every form the OpenAI spec allows (CreateEmbeddingRequest.input:
 * "encoded as a string or array of tokens. To embed multiple inputs in a single request, pass an
 * array of strings or array of token arrays"), within the profile's documented limits, if any.
 */
export function embeddingShape(
  body: Record<string, unknown>,
  profile?: Pick<ProviderProfile, 'embeddingLimits' | 'title'>,
): string | undefined {
  const input = body.input;
  const inputs = embeddingInputs(input);
  if (inputs === undefined)
    return `body.input must be a non-empty string, array of non-empty strings, array of tokens (integers) or array of token arrays, got ${describeValue(input)}`;
  if (inputs.some((x) => x === '')) return 'body.input is empty';
  const limits = profile?.embeddingLimits;
  if (!limits) return undefined;
  const who = profile!.title;
  if (inputs.length > limits.maxInputs)
    return `body.input holds ${inputs.length} inputs; ${who} takes at most ${limits.maxInputs} per request ("any array must be 2048 dimensions or less")`;
  let tokens = 0;
  for (const x of inputs) {
    if (typeof x === 'string') continue;
    if (x.length > limits.maxTokensPerInput)
      return `body.input has a token array of ${x.length} tokens; ${who} takes at most ${limits.maxTokensPerInput} per input`;
    tokens += x.length;
  }
  if (tokens > limits.maxTokensPerRequest)
    return `body.input holds ${tokens} tokens; ${who} takes at most ${limits.maxTokensPerRequest} summed across the inputs of a request`;
  return undefined;
}

/** The text a request sends, for context estimates. */
export function promptText(body: Record<string, unknown>, url: string): string {
  if (url === '/v1/embeddings') {
    // Each input is embedded (and limited) on its own: the longest text decides. Token arrays are
    // counted exactly by embeddingShape.
    let longest = '';
    for (const x of embeddingInputs(body.input) ?? [])
      if (typeof x === 'string' && x.length > longest.length) longest = x;
    return longest;
  }
  let text = '';
  for (const message of body.messages as Array<{ content: unknown }>) {
    const content = message.content;
    if (typeof content === 'string') text += `${content}\n`;
    else if (Array.isArray(content)) {
      for (const part of content as Array<{ type?: unknown; text?: unknown }>) {
        if (part?.type === 'text' && typeof part.text === 'string') text += `${part.text}\n`;
      }
    }
  }
  return text;
}

/** What every line of one template shares, checked once per batch. */
interface TemplateVerdict {
  template: LineTemplate | undefined;
  refusal: Refused | undefined;
  warnings: Array<{ code: WarningCode; message: string }>;
  /** The entry the warnings were last raised for. */
  warned: number;
  /** Warnings of lines checked on another thread (RequestBatch.checkedAlone) raised here so far. */
  replayed: number;
}

/** A rendered line these rules cannot take another thread's word for: checked as any line. */
const UNCHECKED = Symbol('unchecked');

/** The context check needs the tokenizer, which loads asynchronously. */
const NEEDS_TOKENS = Symbol('needs tokens');

/** Settles a built entry: rejected, or accepted with its serialized text. */
function settle(batch: RequestBatch, i: number, verdict: Verdict): void {
  if (verdict.ok) batch.setText(i, verdict.text);
  else batch.reject(i, rejectionOf(verdict, batch.position(i)));
}

/** A refused line as the rejection of its row. */
export function rejectionOf(refused: Refused, at: SourcePosition): Rejection {
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
