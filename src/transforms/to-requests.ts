import { Transform } from 'node:stream';
import { z } from 'zod';
import { customIdFor } from '../core/requests/custom-id.js';
import {
  type ColumnRef,
  type CompiledTemplate,
  columnRef,
  compileTemplate,
  textOf,
} from '../core/requests/template.js';
import {
  type AnswerSchema,
  compileStructuredOutput,
  isAnswerSchema,
} from '../core/structured/structured-output.js';
import { BatchpipeError, isBatchpipeError } from '../errors.js';
import { type WarningHandler, WarningLog } from '../internal/warnings.js';
import { parseOptions } from '../options.js';
import { PROVIDER_NAMES, type ProviderProfile } from '../providers/profile.js';
import { resolveProfile, thinksByDefault } from '../providers/resolve-profile.js';
import type {
  ChatMessage,
  ContentPart,
  Rejection,
  RequestBody,
  RequestItem,
  RequestLine,
  Row,
  RowValues,
  SourceItem,
} from '../types.js';

/** What a mapper returns: a request body; `model` may come from the options instead. */
export interface MapperBody {
  model?: string;
  messages?: ChatMessage[];
  input?: string | string[];
  [field: string]: unknown;
}

/** Builds a request body from a row. Throwing rejects the row (BP_MAPPER_FAILED). */
export type Mapper = (values: RowValues, row: Row) => MapperBody | Promise<MapperBody>;

const finite = z.number().finite();

/** The fields of toRequests' options (without the cross-field rules), for commands that take them too. */
export const ToRequestsFields = {
  /** Endpoint of every line. Default "/v1/chat/completions". */
  endpoint: z.enum(['/v1/chat/completions', '/v1/embeddings']).default('/v1/chat/completions'),
  /** Model of every request (a mapper may set its own). */
  model: z.string().min(1).optional(),
  /** Prompt (chat) or input text (embeddings) with {{column}} placeholders. */
  template: z.string().min(1).optional(),
  /** System prompt for chat, with {{column}} placeholders. */
  system: z.string().min(1).optional(),
  /** Builds the body from a row instead of a template. */
  mapper: z.custom<Mapper>((value) => typeof value === 'function', 'expected a function').optional(),
  /** Column whose value is the custom_id. Default: `row-<n>`. */
  idColumn: z.string().min(1).optional(),
  /** Column holding an image URL (or data: URL) sent beside the prompt, for vision models. */
  imageColumn: z.string().min(1).optional(),
  temperature: finite.min(0).max(2).optional(),
  topP: finite.gt(0).max(1).optional(),
  maxTokens: z.number().int().positive().optional(),
  seed: z.number().int().nonnegative().optional(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).optional(),
  presencePenalty: finite.min(-2).max(2).optional(),
  frequencyPenalty: finite.min(-2).max(2).optional(),
  /** Passed through as `response_format`. */
  responseFormat: z.record(z.string(), z.unknown()).optional(),
  /** Answers are one of these labels: requests ask for `{"label": ...}` (an enum in the schema). */
  labels: z.array(z.string().min(1)).min(1).optional(),
  /** Answers are JSON matching this zod schema (or JSON Schema object, as `--schema file.json` gives). */
  schema: z.custom<AnswerSchema>(isAnswerSchema, 'expected a zod schema or a JSON Schema object').optional(),
  /** How labels/schema are asked for: strict `json_schema`, or `json_object` with the schema in the system
   *  prompt. Default: the provider's (`json_object` on DashScope, whose batch documents do not promise
   *  json_schema). */
  structuredOutput: z.enum(['json_schema', 'json_object']).optional(),
  /** DashScope thinking switch, sent at the top level of `body` beside `model`. */
  enableThinking: z.boolean().optional(),
  /** DashScope cap on thinking tokens, sent beside `enable_thinking`. */
  thinkingBudget: z.number().int().positive().optional(),
  /** Embedding size, for models that take `dimensions`. */
  dimensions: z.number().int().positive().optional(),
  /** More body fields, merged at the top level of `body`. */
  extraBody: z.record(z.string(), z.unknown()).optional(),
  /** Provider whose model facts apply (which models think by default). Default "local". */
  provider: z.union([z.enum(PROVIDER_NAMES), z.custom<ProviderProfile>(isProfile)]).default('local'),
  /** Called once per distinct warning (they are counted, not repeated). */
  onWarning: z.custom<WarningHandler>((value) => typeof value === 'function').optional(),
};

const ToRequestsOptions = z
  .strictObject(ToRequestsFields)
  .refine((o) => (o.template === undefined) !== (o.mapper === undefined), {
    message: 'give exactly one of the template and mapper options',
    path: ['template'],
  })
  .refine((o) => o.mapper !== undefined || o.model !== undefined, {
    message: 'a template needs the model option',
    path: ['model'],
  })
  .refine(
    (o) => o.endpoint === '/v1/chat/completions' || (o.system === undefined && o.imageColumn === undefined),
    {
      message: 'the system and imageColumn options apply to chat only',
      path: ['endpoint'],
    },
  )
  .refine((o) => [o.labels, o.schema, o.responseFormat].filter((v) => v !== undefined).length <= 1, {
    message: 'give at most one of the labels, schema and responseFormat options',
    path: ['labels'],
  })
  .refine(
    (o) => o.endpoint === '/v1/chat/completions' || (o.labels === undefined && o.schema === undefined),
    {
      message: 'the labels and schema options apply to chat only',
      path: ['endpoint'],
    },
  );
export type ToRequestsOptions = z.input<typeof ToRequestsOptions>;
type Options = z.output<typeof ToRequestsOptions>;

/** The Transform `toRequests` returns; `warnings` lists what it warned about, with counts. */
export interface ToRequestsStream extends Transform {
  readonly warnings: WarningLog;
}

/**
 * Row -> request line `{custom_id, method: "POST", url, body}`, one per row, from a template over the
 * row's columns or from a mapper. Rejections from the source pass through. Run-level mistakes throw
 * at the first row (a column the template names is missing there, the mapper fails there); later rows
 * that lack a column or make the mapper throw become rejections, so one odd row never stops a run.
 */
export function toRequests(options: ToRequestsOptions): ToRequestsStream {
  const builder = RequestBuilder.create(options);
  const stream = new Transform({
    objectMode: true,
    highWaterMark: 1024,
    transform(item: SourceItem, _encoding, done) {
      if (item.kind !== 'row') return done(null, item);
      let built: RequestItem | Rejection | Promise<RequestItem | Rejection>;
      try {
        built = builder.build(item);
      } catch (error) {
        return done(error as Error);
      }
      if (built instanceof Promise) built.then((value) => done(null, value), done);
      else done(null, built);
    },
  }) as ToRequestsStream;
  Object.defineProperty(stream, 'warnings', { value: builder.warnings, enumerable: true });
  return stream;
}

/** The per-row work of `toRequests`, compiled once from its options. */
export class RequestBuilder {
  readonly warnings: WarningLog;
  readonly #opts: Options;
  readonly #profile: ProviderProfile;
  readonly #template: CompiledTemplate | undefined;
  readonly #system: CompiledTemplate | undefined;
  readonly #id: ColumnRef | undefined;
  readonly #image: ColumnRef | undefined;
  readonly #fixed: Record<string, unknown>;
  /** JSON mode: the system-prompt text that states the schema. */
  readonly #instruction: string | undefined;
  readonly #thinkingDefault = new Map<string, boolean>();
  /** The profile's custom_id limit: longer keys get derived ids. */
  readonly #maxIdBytes: number;
  #first = true;

  /** A builder from toRequests' options (checked here, once). */
  static create(options: ToRequestsOptions): RequestBuilder {
    return new RequestBuilder(parseOptions(ToRequestsOptions, options, 'toRequests'));
  }

  private constructor(opts: Options) {
    this.#opts = opts;
    this.warnings = new WarningLog(opts.onWarning);
    this.#profile = typeof opts.provider === 'string' ? resolveProfile(opts.provider) : opts.provider;
    this.#maxIdBytes = this.#profile.limits.maxCustomIdBytes;
    this.#template = opts.template === undefined ? undefined : compileTemplate(opts.template);
    this.#system = opts.system === undefined ? undefined : compileTemplate(opts.system);
    this.#id = opts.idColumn === undefined ? undefined : columnRef(opts.idColumn);
    this.#image = opts.imageColumn === undefined ? undefined : columnRef(opts.imageColumn);
    const mode = opts.structuredOutput ?? this.#profile.structuredOutput;
    const structured = compileStructuredOutput({ labels: opts.labels, schema: opts.schema, mode });
    this.#instruction = structured && mode === 'json_object' ? structured.instruction : undefined;
    this.#fixed = fixedFields(opts, structured?.responseFormat(mode));
  }

  build(row: Row): RequestItem | Rejection | Promise<RequestItem | Rejection> {
    const first = this.#first;
    this.#first = false;
    if (first) this.#checkColumns(row);
    const custom_id = customIdFor(row.index, this.#id?.get(row.values), this.#maxIdBytes);
    if (this.#opts.mapper) return this.#fromMapper(row, custom_id, first);
    try {
      return this.#finish(row, custom_id, this.#fromTemplate(row.values));
    } catch (error) {
      if (isBatchpipeError(error) && error.code === 'BP_TEMPLATE_MISSING_COLUMN') {
        return rejection(row, custom_id, 'BP_TEMPLATE_MISSING_COLUMN', error.message);
      }
      throw error;
    }
  }

  #checkColumns(row: Row): void {
    const available = Object.keys(row.values);
    const where = { file: row.file, line: row.line, row: row.index };
    const listed = ` (columns: ${available.slice(0, 20).join(', ')}${available.length > 20 ? ', ...' : ''})`;
    for (const template of [this.#template, this.#system]) {
      const missing = template?.missing(row.values);
      if (missing !== undefined) {
        throw new BatchpipeError(
          'BP_TEMPLATE_MISSING_COLUMN',
          `the template uses {{${missing}}} but row ${row.index} has no column "${missing}"${listed}`,
          {
            ...where,
            column: missing,
          },
        );
      }
    }
    for (const [option, ref] of [
      ['idColumn', this.#id],
      ['imageColumn', this.#image],
    ] as const) {
      if (ref && !ref.has(row.values)) {
        throw new BatchpipeError(
          'BP_ID_COLUMN_MISSING',
          `the ${option} option is "${ref.name}" but row ${row.index} has no such column${listed}`,
          {
            ...where,
            column: ref.name,
          },
        );
      }
    }
  }

  #fromTemplate(values: RowValues): RequestBody {
    const text = this.#template!.render(values);
    if (this.#opts.endpoint === '/v1/embeddings')
      return { model: this.#opts.model!, input: text, ...this.#fixed };
    const messages: ChatMessage[] = [];
    const system = withInstruction(this.#system?.render(values), this.#instruction);
    if (system !== undefined) messages.push({ role: 'system', content: system });
    if (this.#image) {
      const parts: ContentPart[] = [
        { type: 'image_url', image_url: { url: textOf(this.#image.get(values)) } },
        { type: 'text', text },
      ];
      messages.push({ role: 'user', content: parts });
    } else {
      messages.push({ role: 'user', content: text });
    }
    const { enable_thinking, thinking_budget, ...rest } = this.#fixed;
    return {
      model: this.#opts.model!,
      ...(enable_thinking !== undefined && { enable_thinking }),
      ...(thinking_budget !== undefined && { thinking_budget }),
      messages,
      ...rest,
    };
  }

  async #fromMapper(row: Row, custom_id: string, first: boolean): Promise<RequestItem | Rejection> {
    let body: MapperBody;
    try {
      body = await this.#opts.mapper!(row.values, row);
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new TypeError(
          `the mapper must return a request body object, got ${body === null ? 'null' : typeof body}`,
        );
      }
    } catch (error) {
      const message = `mapper failed on row ${row.index}: ${(error as Error)?.message ?? String(error)}`;
      // A mapper that fails on the first row is a bug in the mapper, not a bad row.
      if (first)
        throw new BatchpipeError(
          'BP_MAPPER_FAILED',
          message,
          { file: row.file, line: row.line, row: row.index },
          { cause: error },
        );
      return rejection(row, custom_id, 'BP_MAPPER_FAILED', message);
    }
    const merged = { ...this.#fixed, ...body, model: body.model ?? this.#opts.model } as RequestBody;
    if (this.#instruction !== undefined && Array.isArray(merged.messages))
      merged.messages = instructed(merged.messages as ChatMessage[], this.#instruction);
    return this.#finish(row, custom_id, merged);
  }

  #finish(row: Row, custom_id: string, body: RequestBody): RequestItem {
    if (this.#opts.endpoint === '/v1/chat/completions') body = this.#checkThinking(row, custom_id, body);
    const request: RequestLine = { custom_id, method: 'POST', url: this.#opts.endpoint, body };
    return { kind: 'request', index: row.index, file: row.file, line: row.line, request };
  }

  #checkThinking(row: Row, custom_id: string, body: RequestBody): RequestBody {
    const extra = body.extra_body;
    if (
      extra !== null &&
      typeof extra === 'object' &&
      ('enable_thinking' in extra || 'thinking_budget' in extra)
    ) {
      // DashScope: enable_thinking and thinking_budget sit at the top level of body, beside model;
      // in extra_body a batch ignores them (ref/modelstudio-batch-file-input.txt).
      const { enable_thinking, thinking_budget, ...keep } = extra as Record<string, unknown>;
      const { extra_body: _dropped, ...rest } = body;
      body = {
        ...(enable_thinking !== undefined && { enable_thinking }),
        ...(thinking_budget !== undefined && { thinking_budget }),
        ...rest,
        ...(Object.keys(keep).length > 0 && { extra_body: keep }),
      } as RequestBody;
      this.warnings.warn(
        'BP_WARN_THINKING_MOVED',
        'enable_thinking/thinking_budget were in extra_body, where batch requests ignore them; moved to the top level of body',
        { file: row.file, line: row.line, row: row.index, custom_id },
      );
    }
    if (body.enable_thinking === undefined && typeof body.model === 'string' && this.#thinks(body.model)) {
      this.warnings.warn(
        'BP_WARN_THINKING_DEFAULT',
        `model ${body.model} thinks by default and thinking tokens bill as output; set the enableThinking option explicitly (true or false)`,
        { file: row.file, line: row.line, row: row.index, custom_id },
      );
    }
    return body;
  }

  #thinks(model: string): boolean {
    let thinks = this.#thinkingDefault.get(model);
    if (thinks === undefined) {
      thinks = thinksByDefault(this.#profile, model);
      this.#thinkingDefault.set(model, thinks);
    }
    return thinks;
  }
}

/** Body fields that are the same for every row, in the provider's spelling. */
function fixedFields(o: Options, structured: Record<string, unknown> | undefined): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const put = (key: string, value: unknown) => {
    if (value !== undefined) fields[key] = value;
  };
  put('enable_thinking', o.enableThinking);
  put('thinking_budget', o.thinkingBudget);
  put('temperature', o.temperature);
  put('top_p', o.topP);
  put('max_tokens', o.maxTokens);
  put('seed', o.seed);
  put('stop', o.stop);
  put('presence_penalty', o.presencePenalty);
  put('frequency_penalty', o.frequencyPenalty);
  put('response_format', o.responseFormat ?? structured);
  put('dimensions', o.dimensions);
  Object.assign(fields, o.extraBody);
  return fields;
}

/** A system prompt with the JSON-mode schema statement after it (or alone). */
function withInstruction(system: string | undefined, instruction: string | undefined): string | undefined {
  if (instruction === undefined) return system;
  return system === undefined ? instruction : `${system}\n\n${instruction}`;
}

/** A mapper's messages with the schema statement added to the first system message (or as one). */
function instructed(messages: ChatMessage[], instruction: string): ChatMessage[] {
  const at = messages.findIndex((m) => m.role === 'system' && typeof m.content === 'string');
  if (at === -1) return [{ role: 'system', content: instruction }, ...messages];
  const out = [...messages];
  out[at] = { ...out[at]!, content: withInstruction(out[at]!.content as string, instruction)! };
  return out;
}

function rejection(row: Row, custom_id: string, code: Rejection['code'], message: string): Rejection {
  return { kind: 'rejection', index: row.index, file: row.file, line: row.line, custom_id, code, message };
}

export function isProfile(value: unknown): value is ProviderProfile {
  return (
    value !== null &&
    typeof value === 'object' &&
    'limits' in value &&
    'endpoints' in value &&
    'name' in value
  );
}
