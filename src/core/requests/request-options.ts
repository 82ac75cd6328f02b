import { z } from 'zod';
import type { WarningHandler } from '../../internal/warnings.js';
import { providerOption } from '../../providers/resolve-profile.js';
import type { ChatMessage, Row, RowValues } from '../../types.js';
import { type AnswerSchema, isAnswerSchema } from '../structured/structured-output.js';

/** What a mapper returns: a request body; `model` may come from the options instead. */
export interface MapperBody {
  model?: string;
  messages?: ChatMessage[];
  input?: string | string[] | number[] | number[][];
  [field: string]: unknown;
}

/** Builds a request body from a row. Throwing rejects the row (BP_MAPPER_FAILED). */
export type Mapper = (values: RowValues, row: Row) => MapperBody | Promise<MapperBody>;

const finite = z.number().finite();

/** How requests are built from rows: toRequests' options (without the cross-field rules), which the jobs take too. */
export const ToRequestsFields = {
  /**
   * Compute each rendered line's content key (requestKey) where it is rendered, on the render threads
   * beside the main one: `auto` only for lines that are same draws (temperature 0 or a seed), `on` for
   * all. What deduplication and the result cache look up (prepare sets it). Default: none.
   */
  requestKeys: z.enum(['auto', 'on']).optional(),
  /**
   * With `requestKeys`: keep a table of the keys where the lines are rendered (on the render thread)
   * and say of each keyed line whether an earlier line of the stream had its key
   * (RequestBatch.keySeen), so `shardRequests`' deduplication reads a byte a line instead of keeping
   * a table on the main thread. `expectedKeys`: about how many keyed lines will come (the table
   * starts that large). Every batch must reach `shardRequests`, in order (validation may reject
   * lines in them): it refuses batches that come out of order or after a gap. `prepare` sets it
   * with deduplication.
   */
  markRepeats: z.object({ expectedKeys: z.number().int().nonnegative().optional() }).strict().optional(),
  /** Endpoint of every line. Default "/v1/chat/completions". */
  endpoint: z.enum(['/v1/chat/completions', '/v1/embeddings']).default('/v1/chat/completions'),
  /** Model of every request (a mapper may set its own). */
  model: z.string().min(1).optional(),
  /** Prompt (chat) or input text (embeddings) with {{column}} placeholders. */
  template: z.string().min(1).optional(),
  /** System prompt for chat, with {{column}} placeholders. */
  system: z.string().min(1).optional(),
  /**
   * Builds the body from a row instead of a template: a function, or the path (or file URL) of a
   * module that exports one as default or as `mapper`. A module's mapper runs on worker threads past
   * the first rows of a large table (a function cannot leave its thread), so it must not count on
   * state kept between rows.
   */
  mapper: z
    .union([z.custom<Mapper>((value) => typeof value === 'function'), z.string().min(1), z.instanceof(URL)])
    .optional(),
  /** Column whose value is the custom_id. Default: `row-<n>`. */
  idColumn: z.string().min(1).optional(),
  /**
   * Column (or columns) of images sent beside the prompt, for vision models: each cell an http(s),
   * oss or data: URL sent as it is, or a local file path read and sent as a base64 data URL; a JSON
   * array of them for several images. A model the profile knows to take text only is refused.
   */
  imageColumn: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** Column (or columns) of videos given as frame lists: each cell a JSON array of image URLs or paths. */
  videoColumn: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** Where relative image and frame paths start. Default: the current directory. */
  mediaDir: z.string().min(1).optional(),
  /** Most bytes of one local image file. Default: what fits the profile's line limit as base64. */
  maxImageBytes: z.number().int().positive().optional(),
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
  provider: providerOption,
  /** Called once per distinct warning (they are counted, not repeated). */
  onWarning: z.custom<WarningHandler>((value) => typeof value === 'function').optional(),
};

export const ToRequestsOptions = z
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
    (o) =>
      o.endpoint === '/v1/chat/completions' ||
      (o.system === undefined && o.imageColumn === undefined && o.videoColumn === undefined),
    {
      message: 'the system, imageColumn and videoColumn options apply to chat only',
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
/** toRequests' options, checked and defaulted. */
export type RequestSettings = z.output<typeof ToRequestsOptions>;

/** The names of the request options among a job's options. */
export const REQUEST_OPTION_NAMES = Object.keys(ToRequestsFields) as Array<keyof typeof ToRequestsFields>;
