import type { ErrorCode } from './errors.js';

/** Where a record came from: every record carries it so any later error can say where. */
export interface SourcePosition {
  /** 1-based data row number in the source (header and empty lines excluded). Stable across runs. */
  index: number;
  /** The source file path, or the name given to a stream. */
  file: string;
  /** 1-based physical line where the row starts (differs from `index` with headers and quoted newlines). */
  line: number;
}

/** Column values of one row, by column name. CSV values are strings; JSONL values are any JSON value. */
export type RowValues = Record<string, unknown>;

/** One table row read by a source. */
export interface Row extends SourcePosition {
  kind: 'row';
  values: RowValues;
}

/** A chat message as the OpenAI-compatible chat endpoint takes it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer';
  content: string | ContentPart[] | null;
  [field: string]: unknown;
}

export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string; detail?: 'auto' | 'low' | 'high' } }
  | { type: string; [field: string]: unknown };

/** Body of a `/v1/chat/completions` request. Fields beyond these pass through untouched. */
export interface ChatBody {
  model: string;
  messages: ChatMessage[];
  [field: string]: unknown;
}

/** Body of a `/v1/embeddings` request. */
export interface EmbeddingBody {
  model: string;
  /** Text, texts, tokens, or token arrays (the OpenAI spec's four forms). */
  input: string | string[] | number[] | number[][];
  [field: string]: unknown;
}

export type RequestBody = ChatBody | EmbeddingBody;

/** One line of a Batch API input file, in the provider's spelling. */
export interface RequestLine<B extends RequestBody = RequestBody> {
  custom_id: string;
  method: 'POST';
  url: string;
  body: B;
}

/** A request line on its way to a shard, still tied to its source row. */
export interface RequestItem extends SourcePosition {
  kind: 'request';
  request: RequestLine;
  /** The line serialized as JSON (no newline), once some stage has computed it. */
  text?: string;
  /** UTF-8 byte length of `text`, once computed. */
  bytes?: number;
}

/** A row that could not become a valid request, with the rule it broke. Rejections are data, not crashes. */
export interface Rejection extends SourcePosition {
  kind: 'rejection';
  custom_id: string | null;
  code: ErrorCode;
  message: string;
}

/** What sources emit. */
export type SourceItem = Row | Rejection;

/** What flows between request stages. */
export type RequestStreamItem = RequestItem | Rejection;

/** Codes of warnings: things that work but probably not as the user meant (or cost money). */
export type WarningCode =
  | 'BP_WARN_THINKING_DEFAULT'
  | 'BP_WARN_THINKING_MOVED'
  | 'BP_WARN_THINKING_IN_EXTRA_BODY'
  | 'BP_WARN_BIG_INTEGER'
  | 'BP_WARN_BOM'
  | 'BP_WARN_LOCAL_MODEL'
  | 'BP_WARN_MODEL_SNAPSHOT';

export interface Warning {
  code: WarningCode;
  message: string;
  /** How many records raised it so far (warnings are reported once, then counted). */
  count: number;
  /** Where it was first seen. */
  first?: { file?: string; line?: number; row?: number; custom_id?: string };
}

export type WarningHandler = (warning: Warning) => void;
