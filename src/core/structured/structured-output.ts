import { z } from 'zod';
import { BatchpipeError } from '../../errors.js';
import { deeperThan, tooDeepAt, tooDeepMessage } from '../../internal/json-depth.js';

/** How a request asks for structured answers: a strict JSON schema, or JSON mode with the schema in the prompt. */
export type StructuredMode = 'json_schema' | 'json_object';

/** The shape answers must have: a zod schema, or a JSON Schema object (what `--schema file.json` holds). */
export type AnswerSchema = z.ZodType | Record<string, unknown>;

/** What checking one answer gave: the validated value, or why it failed. */
export type CheckedAnswer =
  | { ok: true; value: unknown }
  | { ok: false; code: 'BP_OUTPUT_NOT_JSON' | 'BP_OUTPUT_SCHEMA'; message: string };

/** Labels or a schema, compiled once: what requests carry and how answers are checked. */
export interface StructuredOutput {
  /** `json_schema.name`: letters, digits, "_" and "-". */
  name: string;
  /** The JSON Schema (draft-7, no `$schema` key) as the user wrote it: what answers are checked against, and what JSON mode states. */
  jsonSchema: Record<string, unknown>;
  /** The copy strict `json_schema` requests carry: every object closed (`additionalProperties: false`). */
  strictSchema: Record<string, unknown>;
  /** The labels, for `--labels`. */
  labels: readonly string[] | undefined;
  /** Leaf paths of the answer object, in schema order: each becomes a column (`a.b` for nested objects). */
  fields: string[][];
  /** The `response_format` a request carries in a mode. */
  responseFormat(mode: StructuredMode): Record<string, unknown>;
  /** The system-prompt text that states the schema in JSON mode. */
  instruction: string;
  /** Parses and validates an answer. */
  check(content: string | null): CheckedAnswer;
}

export interface StructuredOptions {
  labels?: readonly string[] | undefined;
  schema?: AnswerSchema | undefined;
  /** The mode requests use; strict JSON schema needs every property required. Default json_object (no check). */
  mode?: StructuredMode | undefined;
}

const LABEL_FIELD = 'label';
/** Keywords whose values are data, not schemas. */
const DATA_KEYWORDS = new Set(['enum', 'const', 'default', 'examples']);
/** Keywords whose values map names to schemas. */
const SCHEMA_MAPS = new Set(['properties', '$defs', 'definitions', 'patternProperties']);
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** How much of a bad answer an error message quotes. */
const QUOTED_ANSWER = 80;

/** True for a zod schema (zod 4 keeps its internals under `_zod`). */
export function isZodSchema(value: unknown): value is z.ZodType {
  return value !== null && typeof value === 'object' && '_zod' in value;
}

/** True for what `schema` options accept: a zod schema or a JSON Schema object. */
export function isAnswerSchema(value: unknown): value is AnswerSchema {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Compiles `labels` or `schema` once. Throws BP_INVALID_OPTION (option "labels" or "schema") when the
 * schema cannot become JSON Schema, is not an object at the top level, or, in json_schema mode, breaks
 * the strict rules (every property required: use `.nullable()` rather than `.optional()`).
 */
export function compileStructuredOutput(options: StructuredOptions): StructuredOutput | undefined {
  const { labels, schema } = options;
  if (labels !== undefined && schema !== undefined) {
    throw invalid('labels', 'give "labels" or "schema", not both');
  }
  if (labels !== undefined) return compileLabels(labels);
  if (schema !== undefined) return compileSchema(schema, options.mode ?? 'json_object');
  return undefined;
}

/** The JSON text of a schema as requests carry it (for checks over everything a request holds). */
export function answerSchemaText(schema: AnswerSchema): string {
  return JSON.stringify(isZodSchema(schema) ? exportSchema(schema, 'schema') : schema);
}

function compileLabels(labels: readonly string[]): StructuredOutput {
  if (labels.some((l) => l.trim() === '')) throw invalid('labels', 'a label is empty');
  // One label is no choice: every answer would be it, or invalid.
  if (labels.length < 2) throw invalid('labels', `expected two or more labels, got ${labels.length}`);
  if (new Set(labels).size !== labels.length) throw invalid('labels', 'a label appears twice');
  const exported = z.object({ [LABEL_FIELD]: z.enum(labels as [string, ...string[]]) });
  const byKey = new Map<string, string>();
  for (const label of labels) byKey.set(labelKey(label), label);
  // Answers in JSON mode drift in case and spacing ("Positive", " positive."); the canonical label is
  // what a table wants, so those map onto it before the enum check.
  const canonical = (value: unknown) =>
    typeof value === 'string' ? (byKey.get(labelKey(value)) ?? value) : value;
  const validator = z.object({
    [LABEL_FIELD]: z.preprocess(canonical, z.enum(labels as [string, ...string[]])),
  });
  const jsonSchema = exportSchema(exported, 'labels');
  const listed = labels.map((l) => JSON.stringify(l)).join(', ');
  const instruction = `Answer with only a JSON object of the form {"${LABEL_FIELD}": "..."}, where ${LABEL_FIELD} is one of: ${listed}.`;
  // A bare label ("positive") is an answer too: JSON mode is a request, not a guarantee. Other text is
  // checked as the label it would be, so the issue names the labels allowed.
  return build('label', jsonSchema, jsonSchema, validator, labels, instruction, (text) => ({
    [LABEL_FIELD]: byKey.get(labelKey(text)) ?? text.trim(),
  }));
}

function compileSchema(schema: AnswerSchema, mode: StructuredMode): StructuredOutput {
  let jsonSchema: Record<string, unknown>;
  let validator: z.ZodType;
  if (isZodSchema(schema)) {
    jsonSchema = exportSchema(schema, 'schema');
    validator = schema;
  } else {
    const { $schema: _drop, ...rest } = schema;
    jsonSchema = rest;
    // Every walk below (zod's, the strict checks, the fields) recurses a level at a time.
    const deep = tooDeepAt(jsonSchema);
    if (deep !== undefined)
      throw invalid(
        'schema',
        `${tooDeepMessage('the JSON Schema', deep)}; flatten it, or name a part used again in $defs and point at it with $ref`,
      );
    try {
      // The schema as written: plain JSON Schema allows keys it does not name, as a zod object does.
      validator = z.fromJSONSchema(jsonSchema as Parameters<typeof z.fromJSONSchema>[0]);
    } catch (error) {
      throw invalid('schema', `the JSON Schema cannot be used: ${(error as Error).message}`, error);
    }
  }
  if (jsonSchema.type !== 'object' || !isRecord(jsonSchema.properties)) {
    throw invalid('schema', 'the schema must describe a JSON object with properties at the top level');
  }
  // Strict mode requires closed objects; only the copy requests carry is closed, so an answer with an
  // extra key (JSON mode, where the schema is only stated) still validates.
  const strictSchema = isZodSchema(schema) ? jsonSchema : closeObjects(jsonSchema);
  if (mode === 'json_schema') {
    const problem = strictProblem(strictSchema, '');
    if (problem) throw invalid('schema', `strict structured outputs: ${problem}`);
  }
  const title = typeof jsonSchema.title === 'string' ? jsonSchema.title.replace(/[^A-Za-z0-9_-]+/g, '_') : '';
  const name = NAME.test(title) ? title : 'answer';
  const instruction = `Answer with only a JSON object, no other text, that matches this JSON Schema: ${JSON.stringify(jsonSchema)}`;
  return build(name, jsonSchema, strictSchema, validator, undefined, instruction, () => undefined);
}

function build(
  name: string,
  jsonSchema: Record<string, unknown>,
  strictSchema: Record<string, unknown>,
  validator: z.ZodType,
  labels: readonly string[] | undefined,
  instruction: string,
  fromText: (text: string) => unknown,
): StructuredOutput {
  const strict = { type: 'json_schema', json_schema: { name, strict: true, schema: strictSchema } };
  const jsonMode = { type: 'json_object' };
  return {
    name,
    jsonSchema,
    strictSchema,
    labels,
    fields: leafPaths(jsonSchema, []),
    instruction,
    responseFormat: (mode) => (mode === 'json_schema' ? strict : jsonMode),
    check(content) {
      if (content === null || content.trim() === '')
        return { ok: false, code: 'BP_OUTPUT_NOT_JSON', message: 'the answer is empty' };
      const text = stripFence(content.trim());
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        value = fromText(text);
        if (value === undefined) {
          return {
            ok: false,
            code: 'BP_OUTPUT_NOT_JSON',
            message: `the answer is not JSON (${(error as Error).message}): ${quote(content)}`,
          };
        }
      }
      if (typeof value === 'string' && labels) value = fromText(value) ?? { [LABEL_FIELD]: value };
      // Checked, then written into cells (JSON.stringify): both recurse a level at a time.
      if (value !== null && typeof value === 'object' && deeperThan(value))
        return {
          ok: false,
          code: 'BP_OUTPUT_SCHEMA',
          message: tooDeepMessage('the answer', tooDeepAt(value)),
        };
      const result = validator.safeParse(value);
      if (result.success) return { ok: true, value: result.data };
      return { ok: false, code: 'BP_OUTPUT_SCHEMA', message: describeIssues(result.error.issues) };
    },
  };
}

/** The first zod issue, where it is and what it says, and how many more there are. */
function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const first = issues[0]!;
  const at = first.path.length > 0 ? first.path.map(String).join('.') : '(the answer)';
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return `${at}: ${first.message} [${first.code}]${more}`;
}

function exportSchema(schema: z.ZodType, option: string): Record<string, unknown> {
  try {
    // draft-7 is what OpenAI's own zod helper sends.
    const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { target: 'draft-7' }) as Record<
      string,
      unknown
    >;
    return rest;
  } catch (error) {
    throw invalid(option, `the zod schema has no JSON Schema form: ${(error as Error).message}`, error);
  }
}

/**
 * A copy with `additionalProperties: false` on every object that does not say otherwise: strict mode
 * requires it, and hand-written schemas rarely state it.
 */
function closeObjects(schema: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (DATA_KEYWORDS.has(key)) out[key] = value;
    else if (Array.isArray(value)) out[key] = value.map((v) => (isRecord(v) ? closeObjects(v) : v));
    else if (isRecord(value)) out[key] = SCHEMA_MAPS.has(key) ? mapValues(value) : closeObjects(value);
    else out[key] = value;
  }
  if (out.type === 'object' && isRecord(out.properties) && !('additionalProperties' in out))
    out.additionalProperties = false;
  return out;
}

function mapValues(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) out[key] = isRecord(value) ? closeObjects(value) : value;
  return out;
}

/** Where a schema breaks OpenAI's strict rules (every property required, no extra properties), if anywhere. */
function strictProblem(schema: Record<string, unknown>, at: string): string | undefined {
  if (isRecord(schema.properties)) {
    const required = new Set(Array.isArray(schema.required) ? schema.required : []);
    for (const key of Object.keys(schema.properties)) {
      if (!required.has(key))
        return `property "${at}${key}" is optional; every property must be required (use .nullable() instead of .optional())`;
    }
    if (schema.additionalProperties !== false)
      return `object ${at ? `"${at.slice(0, -1)}"` : 'at the top level'} must have additionalProperties: false`;
    for (const [key, value] of Object.entries(schema.properties)) {
      if (isRecord(value)) {
        const problem = strictProblem(value, `${at}${key}.`);
        if (problem) return problem;
      }
    }
  }
  for (const key of ['items', 'anyOf', 'oneOf', 'allOf']) {
    const value = schema[key];
    const list = Array.isArray(value) ? value : isRecord(value) ? [value] : [];
    for (const child of list) {
      if (isRecord(child)) {
        const problem = strictProblem(child, at);
        if (problem) return problem;
      }
    }
  }
  return undefined;
}

/** Leaf property paths: nested objects with properties are walked, anything else is a leaf. */
function leafPaths(schema: Record<string, unknown>, prefix: string[]): string[][] {
  const properties = schema.properties;
  if (!isRecord(properties)) return [prefix];
  const paths: string[][] = [];
  for (const [key, value] of Object.entries(properties)) {
    const path = [...prefix, key];
    if (isRecord(value) && value.type === 'object' && isRecord(value.properties))
      paths.push(...leafPaths(value, path));
    else paths.push(path);
  }
  return paths;
}

/** Answers in JSON mode often come fenced as ```json ... ```. */
function stripFence(text: string): string {
  if (!text.startsWith('```')) return text;
  const open = text.indexOf('\n');
  const close = text.lastIndexOf('```');
  if (open === -1 || close <= open) return text;
  return text.slice(open + 1, close).trim();
}

function labelKey(text: string): string {
  return text
    .trim()
    .replace(/^["'`]+|["'`.!]+$/g, '')
    .trim()
    .toLowerCase();
}

function quote(text: string): string {
  return JSON.stringify(text.length > QUOTED_ANSWER ? `${text.slice(0, QUOTED_ANSWER - 3)}...` : text);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function invalid(option: string, message: string, cause?: unknown): BatchpipeError {
  return new BatchpipeError('BP_INVALID_OPTION', `option "${option}": ${message}`, { option }, { cause });
}
