import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ResultParser } from '../../../src/core/results/result-parser.js';
import { compileStructuredOutput } from '../../../src/core/structured/structured-output.js';
import { answerLine } from '../../support/results.js';

const LABELS = ['positive', 'negative', 'neutral'];
const Review = z.object({
  sentiment: z.enum(['pos', 'neg']),
  score: z.number().min(0).max(1).nullable(),
  address: z.object({ city: z.string(), zip: z.string().nullable() }),
  tags: z.array(z.string()),
});

const answer = (content: string | null, finish: 'stop' | 'length' = 'stop') =>
  answerLine({ custom_id: 'r', content, finish_reason: finish });

describe('labels', () => {
  const parser = new ResultParser({ labels: LABELS, badLines: 'report' });
  const parse = (content: string | null, finish?: 'stop' | 'length') =>
    parser.fromText(answer(content, finish), 'out.jsonl', 1)!;

  it('accepts {"label": ...}, a fenced object, and a bare label in any case, as the canonical label', () => {
    for (const content of [
      '{"label": "negative"}',
      '```json\n{"label": "negative"}\n```',
      'Negative.',
      '"negative"',
      '  NEGATIVE ',
    ]) {
      expect(parse(content), content).toMatchObject({ status: 'ok', parsed: { label: 'negative' } });
    }
  });

  it('makes an answer outside the labels invalid_output with the zod issue', () => {
    expect(parse('{"label": "mixed"}')).toMatchObject({
      status: 'invalid_output',
      parsed: null,
      error_code: 'BP_OUTPUT_SCHEMA',
      error_message: 'label: Invalid option: expected one of "positive"|"negative"|"neutral" [invalid_value]',
    });
    expect(parse('I think it is mixed')).toMatchObject({
      status: 'invalid_output',
      error_code: 'BP_OUTPUT_SCHEMA',
      error_message: expect.stringMatching(
        /^label: Invalid option: expected one of "positive"\|"negative"\|"neutral"/,
      ),
    });
    expect(parse('')).toMatchObject({ status: 'invalid_output', error_message: 'the answer is empty' });
  });

  it('compiles to a strict enum schema, or a JSON-mode instruction naming the labels', () => {
    const compiled = compileStructuredOutput({ labels: LABELS, mode: 'json_schema' })!;
    expect(compiled.responseFormat('json_schema')).toEqual({
      type: 'json_schema',
      json_schema: {
        name: 'label',
        strict: true,
        schema: {
          type: 'object',
          properties: { label: { type: 'string', enum: LABELS } },
          required: ['label'],
          additionalProperties: false,
        },
      },
    });
    expect(compiled.responseFormat('json_object')).toEqual({ type: 'json_object' });
    expect(compiled.instruction).toBe(
      'Answer with only a JSON object of the form {"label": "..."}, where label is one of: "positive", "negative", "neutral".',
    );
    expect(compiled.fields).toEqual([['label']]);
  });

  it('refuses empty or repeated labels, or only one', () => {
    expect(() => compileStructuredOutput({ labels: ['a', ' '] })).toThrow(
      /option "labels": a label is empty/,
    );
    expect(() => compileStructuredOutput({ labels: ['a', 'a'] })).toThrow(/a label appears twice/);
    // One label is no choice to make.
    expect(() => compileStructuredOutput({ labels: ['a'] })).toThrow(
      /option "labels": expected two or more labels, got 1/,
    );
  });
});

describe('schema', () => {
  const parser = new ResultParser({ schema: Review, badLines: 'report' });
  const good = { sentiment: 'pos', score: 0.9, address: { city: 'Oslo', zip: null }, tags: ['a'] };

  it('parses and validates answers with the zod schema', () => {
    expect(parser.fromText(answer(JSON.stringify(good)), 'f', 1)).toMatchObject({
      status: 'ok',
      parsed: good,
    });
  });

  it('makes an answer that fails validation invalid_output, naming the path of the first issue', () => {
    const bad = { ...good, score: 7, address: { city: 3, zip: null } };
    const record = parser.fromText(answer(JSON.stringify(bad)), 'f', 1)!;
    expect(record).toMatchObject({ status: 'invalid_output', error_code: 'BP_OUTPUT_SCHEMA', parsed: null });
    expect(record.error_message).toMatch(
      /^score: Too big: expected number to be <=1 \[too_big\] \(and 1 more\)$/,
    );
  });

  it('keeps a cut-off answer truncated, with the parse failure as its error', () => {
    expect(parser.fromText(answer('{"sentiment": "pos", "sco', 'length'), 'f', 1)).toMatchObject({
      status: 'truncated',
      error_code: 'BP_OUTPUT_NOT_JSON',
    });
  });

  it('validates with a JSON Schema object too (what --schema file.json gives)', () => {
    const fromFile = new ResultParser({
      schema: z.toJSONSchema(Review) as Record<string, unknown>,
      badLines: 'report',
    });
    expect(fromFile.fromText(answer(JSON.stringify(good)), 'f', 1)).toMatchObject({
      status: 'ok',
      parsed: good,
    });
    expect(fromFile.fromText(answer('{"sentiment": "meh"}'), 'f', 1)).toMatchObject({
      status: 'invalid_output',
    });
  });

  it('flattens nested objects into field paths, in schema order', () => {
    expect(compileStructuredOutput({ schema: Review })!.fields).toEqual([
      ['sentiment'],
      ['score'],
      ['address', 'city'],
      ['address', 'zip'],
      ['tags'],
    ]);
  });

  it('refuses, in strict json_schema mode, optional properties and open objects', () => {
    const optional = z.object({ a: z.string(), b: z.string().optional() });
    expect(() => compileStructuredOutput({ schema: optional, mode: 'json_schema' })).toThrow(
      /option "schema": strict structured outputs: property "b" is optional; every property must be required \(use \.nullable\(\) instead of \.optional\(\)\)/,
    );
    expect(() => compileStructuredOutput({ schema: optional, mode: 'json_object' })).not.toThrow();
    // A hand-written file without additionalProperties gets it in what requests carry: strict mode requires it.
    const file = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
    const compiled = compileStructuredOutput({ schema: file, mode: 'json_schema' })!;
    expect(compiled.responseFormat('json_schema')).toMatchObject({
      json_schema: { strict: true, schema: { ...file, additionalProperties: false } },
    });
    expect(compiled.jsonSchema).toEqual(file);
  });

  it('a --schema JSON Schema file no longer rejects extra keys in answers (closes objects only in strict requests)', () => {
    const file = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: { a: { type: 'string' }, inner: { type: 'object', properties: { b: { type: 'number' } } } },
      required: ['a'],
    };
    const withExtra = answer('{"a": "x", "extra": 1, "inner": {"b": 2, "more": true}}');
    const fromFile = new ResultParser({ schema: file, badLines: 'report' });
    expect(fromFile.fromText(withExtra, 'f', 1)).toMatchObject({ status: 'ok', error_code: null });
    // As a zod object does.
    const zod = new ResultParser({ schema: z.object({ a: z.string() }), badLines: 'report' });
    expect(zod.fromText(withExtra, 'f', 1)).toMatchObject({ status: 'ok', parsed: { a: 'x' } });
    // The schema is still checked.
    expect(fromFile.fromText(answer('{"a": 3, "extra": 1}'), 'f', 1)).toMatchObject({
      status: 'invalid_output',
      error_code: 'BP_OUTPUT_SCHEMA',
    });
    // An explicit additionalProperties: false is the user's: it is respected, nested too.
    const closed = {
      ...file,
      additionalProperties: false,
      properties: { ...file.properties, inner: { ...file.properties.inner, additionalProperties: false } },
    };
    const strictFile = new ResultParser({ schema: closed, badLines: 'report' });
    expect(strictFile.fromText(answer('{"a": "x", "extra": 1}'), 'f', 1)).toMatchObject({
      status: 'invalid_output',
      error_code: 'BP_OUTPUT_SCHEMA',
      error_message: expect.stringMatching(/Unrecognized key: "extra"/),
    });
    expect(strictFile.fromText(answer('{"a": "x", "inner": {"more": 1}}'), 'f', 1)).toMatchObject({
      status: 'invalid_output',
      error_message: expect.stringMatching(/^inner: Unrecognized key/),
    });
    // Strict requests carry the closed copy (nested objects too); JSON mode states the schema as written.
    const complete = {
      ...file,
      required: ['a', 'inner'],
      properties: { ...file.properties, inner: { ...file.properties.inner, required: ['b'] } },
    };
    const compiled = compileStructuredOutput({ schema: complete, mode: 'json_schema' })!;
    const strict = compiled.responseFormat('json_schema') as {
      json_schema: { schema: Record<string, unknown> };
    };
    expect(strict.json_schema.schema).toMatchObject({
      additionalProperties: false,
      properties: { inner: { additionalProperties: false } },
    });
    expect(compiled.instruction).not.toContain('additionalProperties');
    expect(complete).not.toHaveProperty('additionalProperties');
  });

  it('refuses a schema that is not an object at the top level, or has no JSON Schema form', () => {
    expect(() => compileStructuredOutput({ schema: z.array(z.string()) })).toThrow(
      /must describe a JSON object/,
    );
    expect(() => compileStructuredOutput({ schema: z.object({ when: z.date() }) })).toThrow(
      /option "schema": the zod schema has no JSON Schema form/,
    );
  });
});
