import { resolve } from 'node:path';
import { BatchpipeError, isBatchpipeError } from '../../errors.js';
import { WarningLog } from '../../internal/warnings.js';
import { parseOptions } from '../../options.js';
import type { ProviderProfile } from '../../providers/profile.js';
import { profileOf, thinksByDefault } from '../../providers/resolve-profile.js';
import type {
  ChatMessage,
  ContentPart,
  Rejection,
  RequestBody,
  RequestItem,
  RequestLine,
  Row,
  RowValues,
  SourcePosition,
} from '../../types.js';
import { type ColumnRef, columnRef } from '../rows/column-ref.js';
import { mapperFailure } from '../rows/mapper-failure.js';
import { compileStructuredOutput } from '../structured/structured-output.js';
import { customIdFor } from './custom-id.js';
import { loadMapper, mapperModuleUrl } from './mapper-module.js';
import { MediaProblem, type MediaSettings, mediaParts } from './media.js';
import {
  type Mapper,
  type MapperBody,
  type RequestSettings,
  ToRequestsOptions as Schema,
  type ToRequestsOptions,
} from './request-options.js';
import { type CompiledTemplate, compileTemplate, placeholder } from './template.js';

/** A builder's settings as they cross to another thread (see RequestBuilder.threadState). */
export interface BuilderState {
  settings: Omit<RequestSettings, 'mapper' | 'onWarning' | 'schema'>;
  fixed: Record<string, unknown>;
  instruction: string | undefined;
}

/** The per-row work of `toRequests`, compiled once from its options. */
export class RequestBuilder {
  readonly warnings: WarningLog;
  readonly settings: RequestSettings;
  readonly profile: ProviderProfile;
  readonly #template: CompiledTemplate | undefined;
  readonly #system: CompiledTemplate | undefined;
  readonly #id: ColumnRef | undefined;
  readonly #images: ColumnRef[];
  readonly #videos: ColumnRef[];
  readonly #media: MediaSettings;
  readonly #fixed: Record<string, unknown>;
  /** JSON mode: the system-prompt text that states the schema. */
  readonly #instruction: string | undefined;
  readonly #thinkingDefault = new Map<string, boolean>();
  /** The profile's custom_id limit: longer keys get derived ids. */
  readonly maxIdChars: number;
  /** The mapper module's file URL, when the mapper option names one. */
  readonly mapperModule: string | undefined;
  #mapper: Mapper | undefined;
  #first = true;

  /** A builder from toRequests' options (checked here, once). */
  static create(options: ToRequestsOptions): RequestBuilder {
    return new RequestBuilder(parseOptions(Schema, options, 'toRequests'));
  }

  /** A builder on another thread, from `threadState()` and the mapper loaded there, warning into `warnings`. */
  static onThread(state: BuilderState, mapper: Mapper, warnings: WarningLog): RequestBuilder {
    const builder = new RequestBuilder({ ...state.settings, mapper }, state, warnings);
    builder.#first = false;
    return builder;
  }

  private constructor(
    opts: RequestSettings,
    derived?: Omit<BuilderState, 'settings'>,
    warnings = new WarningLog(opts.onWarning),
  ) {
    this.settings = opts;
    this.warnings = warnings;
    this.profile = profileOf(opts.provider);
    this.maxIdChars = this.profile.limits.maxCustomIdChars;
    this.#template = opts.template === undefined ? undefined : compileTemplate(opts.template);
    this.#system = opts.system === undefined ? undefined : compileTemplate(opts.system);
    this.#id = opts.idColumn === undefined ? undefined : columnRef(opts.idColumn);
    this.#images = namesOf(opts.imageColumn).map(columnRef);
    this.#videos = namesOf(opts.videoColumn).map(columnRef);
    this.#media = {
      dir: resolve(opts.mediaDir ?? '.'),
      // The documents in ref/ give no image size limit: the line limit bounds one (base64 adds a third).
      maxBytes: opts.maxImageBytes ?? Math.floor((this.profile.limits.maxLineBytes * 3) / 4),
    };
    if (typeof opts.mapper === 'function') this.#mapper = opts.mapper;
    else if (opts.mapper !== undefined) this.mapperModule = mapperModuleUrl(opts.mapper);
    if (derived) {
      this.#instruction = derived.instruction;
      this.#fixed = derived.fixed;
      return;
    }
    const mode = opts.structuredOutput ?? this.profile.structuredOutput;
    const structured = compileStructuredOutput({ labels: opts.labels, schema: opts.schema, mode });
    this.#instruction = structured && mode === 'json_object' ? structured.instruction : undefined;
    this.#fixed = fixedFields(opts, structured?.responseFormat(mode));
  }

  /** The same builder with a log of its own, its first-row check done (for rows that are not the table's). */
  copy(): RequestBuilder {
    const copy = new RequestBuilder({ ...this.settings, onWarning: undefined });
    copy.#mapper = this.#mapper;
    copy.#first = false;
    return copy;
  }

  /** True when the mapper is a module not loaded yet (`loadMapper` first). */
  get mapperToLoad(): boolean {
    return this.mapperModule !== undefined && this.#mapper === undefined;
  }

  /** Loads the mapper module the options name. */
  async loadMapper(): Promise<void> {
    if (this.mapperModule !== undefined) this.#mapper ??= await loadMapper(this.mapperModule);
  }

  /**
   * What another thread needs to build this builder's requests with the mapper it loads itself:
   * the settings that can cross (no functions, no zod schema) and what was derived from the rest.
   */
  threadState(): BuilderState {
    const { mapper: _mapper, onWarning: _onWarning, schema: _schema, ...settings } = this.settings;
    return { settings, fixed: this.#fixed, instruction: this.#instruction };
  }

  /** The columns a body reads (template, system prompt, image), in order of first use. */
  get columns(): string[] {
    const names = [...(this.#template?.columns ?? []), ...(this.#system?.columns ?? [])];
    for (const ref of [...this.#images, ...this.#videos]) names.push(ref.name);
    return [...new Set(names)];
  }

  /** The columns the prompt (template, then system prompt) reads: a row lacking one is rejected. */
  get promptColumns(): string[] {
    return [...(this.#template?.columns ?? []), ...(this.#system?.columns ?? [])];
  }

  /** True when rows carry images or video: their bodies are built one by one (files are read). */
  get hasMedia(): boolean {
    return this.#images.length + this.#videos.length > 0;
  }

  /** True when the input text an embeddings template makes is empty for empty cells. */
  get templateIsAllPlaceholders(): boolean {
    return this.#template !== undefined && this.#template.literal === '';
  }

  /** The custom_id of row `index` given its key column's value. */
  customId(index: number, key: unknown): string {
    return customIdFor(index, key, this.maxIdChars);
  }

  build(row: Row): RequestItem | Rejection | Promise<RequestItem | Rejection> {
    const first = this.#first;
    this.#first = false;
    if (first) this.#checkColumns(row);
    const custom_id = customIdFor(row.index, this.#id?.get(row.values), this.maxIdChars);
    if (this.settings.mapper !== undefined) return this.#fromMapper(row, custom_id, first);
    if (this.hasMedia) return this.#withMedia(row, custom_id);
    try {
      return this.#finish(row, custom_id, this.#fromTemplate(row.values));
    } catch (error) {
      if (isBatchpipeError(error) && error.code === 'BP_TEMPLATE_MISSING_COLUMN') {
        return rejection(row, custom_id, 'BP_TEMPLATE_MISSING_COLUMN', error.message);
      }
      throw error;
    }
  }

  /**
   * The run-level check of the first row: a column the template names, or the id or image column,
   * that the row lacks is a mistake in the settings (BP_TEMPLATE_MISSING_COLUMN, BP_ID_COLUMN_MISSING).
   * Marks the first row as seen.
   */
  checkFirst(keys: readonly string[], has: (name: string) => boolean, at: SourcePosition): void {
    this.#first = false;
    const where = { file: at.file, line: at.line, row: at.index };
    const listed = ` (columns: ${keys.slice(0, 20).join(', ')}${keys.length > 20 ? ', ...' : ''})`;
    for (const template of [this.#template, this.#system]) {
      const missing = template?.columns.find((name) => !has(name));
      if (missing !== undefined) {
        throw new BatchpipeError(
          'BP_TEMPLATE_MISSING_COLUMN',
          `the template uses ${placeholder(missing)} but row ${at.index} has no column ${JSON.stringify(missing)}${listed}`,
          { ...where, column: missing },
        );
      }
    }
    for (const [option, ref] of [
      ['idColumn', this.#id] as const,
      ...this.#images.map((r) => ['imageColumn', r] as const),
      ...this.#videos.map((r) => ['videoColumn', r] as const),
    ]) {
      if (ref && !has(ref.name)) {
        throw new BatchpipeError(
          'BP_ID_COLUMN_MISSING',
          `the ${option} option is "${ref.name}" but row ${at.index} has no such column${listed}`,
          { ...where, column: ref.name },
        );
      }
    }
  }

  /** Whether the first row is still to come. */
  get atFirstRow(): boolean {
    return this.#first;
  }

  /** The message of a row (after the first) that lacks a column the prompt reads. */
  missingMessage(name: string): string {
    return `the template uses ${placeholder(name)} but the row has no column ${JSON.stringify(name)}`;
  }

  #checkColumns(row: Row): void {
    const values = row.values;
    this.checkFirst(Object.keys(values), (name) => columnRef(name).has(values), row);
  }

  /** A template row with its images and video read: a file that cannot be sent rejects the row. */
  async #withMedia(row: Row, custom_id: string): Promise<RequestItem | Rejection> {
    let parts: ContentPart[];
    try {
      parts = await mediaParts(
        this.#images.map((ref) => ({ column: ref.name, value: ref.get(row.values) })),
        this.#videos.map((ref) => ({ column: ref.name, value: ref.get(row.values) })),
        this.#media,
      );
    } catch (error) {
      if (error instanceof MediaProblem) return rejection(row, custom_id, 'BP_MEDIA_INVALID', error.message);
      throw error;
    }
    try {
      return this.#finish(row, custom_id, this.#fromTemplate(row.values, parts));
    } catch (error) {
      if (isBatchpipeError(error) && error.code === 'BP_TEMPLATE_MISSING_COLUMN') {
        return rejection(row, custom_id, 'BP_TEMPLATE_MISSING_COLUMN', error.message);
      }
      throw error;
    }
  }

  #fromTemplate(values: RowValues, media: ContentPart[] = []): RequestBody {
    const text = this.#template!.render(values);
    if (this.settings.endpoint === '/v1/embeddings')
      return { model: this.settings.model!, input: text, ...this.#fixed };
    const messages: ChatMessage[] = [];
    const system = withInstruction(this.#system?.render(values), this.#instruction);
    if (system !== undefined) messages.push({ role: 'system', content: system });
    if (media.length > 0) {
      // Images and video first, then the prompt, as the vision guides show them.
      messages.push({ role: 'user', content: [...media, { type: 'text', text }] });
    } else {
      messages.push({ role: 'user', content: text });
    }
    const { enable_thinking, thinking_budget, ...rest } = this.#fixed;
    return {
      model: this.settings.model!,
      ...(enable_thinking !== undefined && { enable_thinking }),
      ...(thinking_budget !== undefined && { thinking_budget }),
      messages,
      ...rest,
    };
  }

  #fromMapper(
    row: Row,
    custom_id: string,
    first: boolean,
  ): RequestItem | Rejection | Promise<RequestItem | Rejection> {
    const mapper = this.#mapper;
    if (!mapper)
      throw new Error(`the mapper module ${this.mapperModule} is not loaded yet (loadMapper first)`);
    let body: MapperBody | Promise<MapperBody>;
    try {
      body = mapper(row.values, row);
    } catch (error) {
      return this.#mapperFailed(row, custom_id, first, error);
    }
    // A mapper that returns a body (not a promise) is settled without waiting a turn.
    if (body instanceof Promise)
      return body.then(
        (value) => this.#fromBody(row, custom_id, first, value),
        (error: unknown) => this.#mapperFailed(row, custom_id, first, error),
      );
    return this.#fromBody(row, custom_id, first, body);
  }

  #fromBody(row: Row, custom_id: string, first: boolean, body: MapperBody): RequestItem | Rejection {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return this.#mapperFailed(
        row,
        custom_id,
        first,
        new TypeError(
          `the mapper must return a request body object, got ${body === null ? 'null' : typeof body}`,
        ),
      );
    }
    const merged = { ...this.#fixed, ...body, model: body.model ?? this.settings.model } as RequestBody;
    if (this.#instruction !== undefined && Array.isArray(merged.messages))
      merged.messages = instructed(merged.messages as ChatMessage[], this.#instruction);
    return this.#finish(row, custom_id, merged);
  }

  #mapperFailed(row: Row, custom_id: string, first: boolean, error: unknown): Rejection {
    return mapperFailure('mapper', row, custom_id, first, error);
  }

  #finish(row: Row, custom_id: string, body: RequestBody): RequestItem {
    if (this.settings.endpoint === '/v1/chat/completions') body = this.#checkThinking(row, custom_id, body);
    const request: RequestLine = { custom_id, method: 'POST', url: this.settings.endpoint, body };
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
      thinks = thinksByDefault(this.profile, model);
      this.#thinkingDefault.set(model, thinks);
    }
    return thinks;
  }
}

/** Body fields that are the same for every row, in the provider's spelling. */
function fixedFields(
  o: RequestSettings,
  structured: Record<string, unknown> | undefined,
): Record<string, unknown> {
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

function rejection(
  row: SourcePosition,
  custom_id: string,
  code: Rejection['code'],
  message: string,
): Rejection {
  return { kind: 'rejection', index: row.index, file: row.file, line: row.line, custom_id, code, message };
}

/** A column option's names: one, several, or none. */
function namesOf(option: string | readonly string[] | undefined): string[] {
  return option === undefined ? [] : typeof option === 'string' ? [option] : [...option];
}
