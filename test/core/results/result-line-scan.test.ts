import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SHAPES, scanResultLine } from '../../../src/core/results/result-line-scan.js';
import { ResultParser } from '../../../src/core/results/result-parser.js';
import { answerLine, type ErrorKind, embeddingLine, errorLine } from '../../support/results.js';

/**
 * The byte reader must give the records JSON.parse gives: each line is read both ways (fromBytes,
 * and fromText, which parses the whole line with JSON.parse) by parsers with their own problem
 * counts, and the records and problems must be equal.
 */
function bothWays(
  line: string,
  settings: ConstructorParameters<typeof ResultParser>[0] = { badLines: 'report' },
  at = 1,
) {
  const bytes = Buffer.from(`garbage before${line}\nafter`, 'utf8');
  const start = Buffer.byteLength('garbage before');
  const end = start + Buffer.byteLength(line);
  const viaBytes = new ResultParser(settings);
  const viaText = new ResultParser(settings);
  const fromBytes = viaBytes.fromBytes(bytes, start, end, 'f.jsonl', at);
  const fromText = viaText.fromText(line, 'f.jsonl', at);
  return {
    fromBytes,
    fromText,
    problems: [viaBytes.problems, viaText.problems].map((p) => ({
      count: p.count,
      first: p.first.map((e) => [e.code, e.message, e.context]),
    })),
    scanned: scanResultLine(bytes, start, end) !== undefined,
  };
}

function expectSame(line: string, settings?: ConstructorParameters<typeof ResultParser>[0], at = 1): boolean {
  const { fromBytes, fromText, problems, scanned } = bothWays(line, settings, at);
  expect(fromBytes).toEqual(fromText);
  // toEqual treats -0 and 0 alike in places; Object.is on the numbers the records hold does not.
  for (const key of ['prompt_tokens', 'completion_tokens', 'reasoning_tokens', 'status_code'] as const)
    expect(Object.is(fromBytes?.[key], fromText?.[key])).toBe(true);
  expect(problems[0]).toEqual(problems[1]);
  return scanned;
}

/** A parsed line, edited freely. */
type Json = ReturnType<typeof JSON.parse>;

const edited = (line: string, edit: (value: Json) => void): string => {
  const value: Json = JSON.parse(line);
  edit(value);
  return JSON.stringify(value);
};

describe('scanResultLine', () => {
  it('builds each shape with exactly the members it reads', () => {
    for (const shape of SHAPES) {
      const values = shape.names.map((name) => `value of ${name}`);
      const built = shape.build(values);
      expect(Object.keys(built)).toEqual(shape.names);
      for (const [i, name] of shape.names.entries()) expect(built[name]).toBe(values[i]);
    }
  });

  it('reads the lines providers write from their bytes, as JSON.parse does', () => {
    const lines = [
      ...(['openai', 'dashscope', 'vllm'] as const).flatMap((flavor) => [
        answerLine({ custom_id: 'row-1', content: 'positive', flavor, n: 3 }),
        answerLine({ custom_id: 'row-2', content: 'long', flavor, finish_reason: 'length', reasoning: 'hm' }),
        answerLine({ custom_id: 'row-3', content: null, flavor, finish_reason: 'content_filter' }),
        answerLine({ custom_id: 'row-4', content: 'x', flavor, reasoning_tokens: 7, model: 'm' }),
      ]),
      ...(['http', 'expired', 'cancelled', 'string', 'dashscope', 'body-string'] as ErrorKind[]).map((kind) =>
        errorLine('row-9', kind, 4),
      ),
      embeddingLine('e-1', [0.5, -1.25, 3e-7, 0, -0]),
    ];
    for (const line of lines) expect(expectSame(line)).toBe(true);
  });

  it('agrees on an answer with a quote, escape, control byte or non-ASCII character at every place of 0-40 bytes (read four bytes a step)', () => {
    const specials = ['"', '\\', '\n', '\u0001', 'é', '😀', '\t'];
    for (let length = 0; length <= 40; length++) {
      for (const special of specials) {
        for (let at = 0; at <= length; at++) {
          const content = `${'a'.repeat(at)}${special}${'b'.repeat(length - at)}`;
          const line = answerLine({ custom_id: `row-${length}-${at}`, content });
          expect(expectSame(line)).toBe(true);
          // The same bytes raw in the line (a control byte JSON forbids, an unescaped quote): refused alike.
          const raw = line.replace(JSON.stringify(content).slice(1, -1), content);
          expectSame(raw);
        }
      }
    }
  });

  it('agrees on escapes, unicode, nested content, tool calls, refusals and odd values', () => {
    const base = answerLine({ custom_id: 'row-1', content: 'ok' });
    const lines = [
      answerLine({ custom_id: 'row-"quoted"\\', content: 'a "b"\n\tc \u2028 \u0000 \ud83d\ude00 é 日本' }),
      answerLine({ custom_id: 'ро-1 😀', content: 'ünïcödé 👍🏽 crème brûlée' }),
      base.replace('"content":"ok"', '"content":"\\ud83d\\ude00 \\u00e9 \\/ \\b\\f\\r"'),
      // A lone surrogate, escaped: JSON.parse keeps it.
      base.replace('"content":"ok"', '"content":"\\ud800x"'),
      edited(base, (v) => {
        v.response.body.choices[0].message.content = [
          { type: 'text', text: 'one ' },
          'two',
          { type: 'image' },
        ];
      }),
      edited(base, (v) => {
        v.response.body.choices[0].message.content = null;
        v.response.body.choices[0].message.tool_calls = [
          { id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":[1,{"b":null}]}' } },
        ];
        v.response.body.choices[0].finish_reason = 'tool_calls';
      }),
      edited(base, (v) => {
        v.response.body.choices[0].message.content = null;
        v.response.body.choices[0].message.refusal = "I can't help with that.";
      }),
      edited(base, (v) => {
        v.response.body.choices = [];
      }),
      edited(base, (v) => {
        v.response.body.choices = ['not an object', { message: { content: 'second' } }];
      }),
      edited(base, (v) => {
        v.response.body.choices = { 0: { message: { content: 'an object, not a list' } } };
      }),
      edited(base, (v) => {
        v.response.body.choices[0] = { text: 'completion text', finish_reason: 'stop' };
      }),
      edited(base, (v) => {
        v.response.body.usage = {
          prompt_tokens: '12',
          completion_tokens: 1.5,
          completion_tokens_details: null,
          output_tokens_details: { reasoning_tokens: 2 },
        };
      }),
      edited(base, (v) => {
        v.response.body.usage = [1, 2];
      }),
      edited(base, (v) => {
        v.response.body.usage.completion_tokens_details = [];
        v.response.body.usage.reasoning_tokens = ' 4 ';
      }),
      edited(base, (v) => {
        v.response.status_code = '200';
        v.response.request_id = 42;
        v.response.body.model = { name: 'm' };
      }),
      edited(base, (v) => {
        v.response.status_code = 503;
        v.response.body = { code: 'Throttling', message: 'slow down', request_id: 'r' };
      }),
      edited(base, (v) => {
        v.response.body.error = {};
      }),
      edited(base, (v) => {
        v.response.body.error = { code: null, message: null };
      }),
      edited(base, (v) => {
        v.response.body.error = { code: 500, type: 'server_error' };
      }),
      edited(base, (v) => {
        v.error = { code: 'batch_expired', message: 'late', extra: [1, { deep: true }] };
      }),
      edited(base, (v) => {
        v.error = false;
      }),
      edited(base, (v) => {
        v.error = 0;
      }),
      edited(base, (v) => {
        v.cached = true;
        v.custom_id = 12345;
      }),
      edited(base, (v) => {
        v.custom_id = '';
      }),
      edited(base, (v) => {
        delete v.custom_id;
      }),
      edited(base, (v) => {
        v.response = 'a string';
      }),
      edited(base, (v) => {
        v.response.body = JSON.stringify(v.response.body);
      }),
      edited(base, (v) => {
        v.response.body = [];
      }),
      edited(base, (v) => {
        delete v.response.body.choices;
        v.response.body.output = [
          { type: 'reasoning', summary: [{ type: 'summary_text', text: 'thought' }] },
          { type: 'message', content: [{ type: 'output_text', text: 'Paris' }] },
        ];
        v.response.body.status = 'completed';
        v.response.body.incomplete_details = null;
      }),
      edited(base, (v) => {
        delete v.response.body.choices;
        v.response.body.status = 'incomplete';
        v.response.body.output = [];
        v.response.body.incomplete_details = { reason: 'max_output_tokens' };
      }),
      edited(base, (v) => {
        delete v.response.body.choices;
        v.response.body.data = [{ index: 0, embedding: 'AACAPwAAAEA=' }];
      }),
      edited(base, (v) => {
        delete v.response.body.choices;
      }),
      // Numbers JSON writes in every form.
      base.replace('"prompt_tokens":20', '"prompt_tokens":-0'),
      base.replace('"prompt_tokens":20', '"prompt_tokens":1e400'),
      base.replace('"prompt_tokens":20', '"prompt_tokens":12345678901234567890'),
      base.replace('"prompt_tokens":20', '"prompt_tokens":2.50E+1'),
      base.replace('"prompt_tokens":20', '"prompt_tokens":-0.0e-0'),
      base.replace('"prompt_tokens":20', '"prompt_tokens":999999999999999'),
      // Repeated members: the last one counts.
      base.replace('"custom_id":"row-1"', '"custom_id":"first","custom_id":"row-1"'),
      base.replace('"error":null', '"error":{"code":"x","message":"y"},"error":null'),
      base.replace('"usage":{', '"usage":{"prompt_tokens":1},"usage":{'),
      // Whitespace JSON allows anywhere between tokens.
      ` \t{ "custom_id" : "s" ,\r"response" :{"status_code": 200 ,"body" : { "choices" : [ { "message" : { "content" : "x" } } , 1 ] , "usage" : { "prompt_tokens" : 3 } } } , "error" : null } \t`,
      '{}',
      // DEL is no control character to JSON.
      base.replace('"content":"ok"', '"content":"o\u007fk"'),
      '{"custom_id":"e","response":{},"error":null}',
      '{"custom_id":"deep","response":{"status_code":200,"body":{"choices":[{"message":{"content":"x"},"extra":[[[[[[[[[[[[1]]]]]]]]]]]]}]}}}',
    ];
    for (const line of lines) expectSame(line);
    // The plain ones are read from their bytes (not handed to JSON.parse).
    expect(bothWays(lines[0]!).scanned).toBe(true);
    expect(bothWays(lines[1]!).scanned).toBe(true);
  });

  it('tells names learned from the line before, and strings kept from it, only by the same bytes', () => {
    // Each line follows one that taught the reader its names and strings: the next differs in one
    // place (a name's last byte, order, spacing, an escape spelling the same name, a string's last
    // byte, a string past the kept length), and must still read as JSON.parse reads it.
    const base = answerLine({ custom_id: 'row-1', content: 'positive', model: 'gpt-4o-mini' });
    const variants = [
      base.replace('"model":', '"modem":'),
      base.replace('"model":', '"mode":'),
      base.replace('"model":', '"models":'),
      base.replace('"model":', '"model" :'),
      base.replace('"model":', ' "model":'),
      base.replace('"custom_id":', '"custom\\u005fid":'),
      base.replace('"custom_id":', '"custom_ie":'),
      base.replace('"custom_id":"row-1",', '').replace('"error":null', '"error":null,"custom_id":"row-1"'),
      base.replace('"content":"positive"', '"content":"positivf"'),
      base.replace('"content":"positive"', '"content":"positiv"'),
      base.replace('"content":"positive"', '"content":"positive "'),
      base.replace('"content":"positive"', '"content":"posit\\u0069ve"'),
      base.replace('"content":"positive"', '"content":"posit\\"ve"'),
      base.replace('"content":"positive"', '"content":"positivé"'),
      base.replace('"content":"positive"', `"content":"${'p'.repeat(32)}"`),
      base.replace('"content":"positive"', `"content":"${'p'.repeat(33)}"`),
      base.replace('"content":"positive"', `"content":"${'p'.repeat(31)}q"`),
      base.replace('"content":"positive"', '"content":1'),
      base.replace('"content":"positive"', '"content":null'),
      base.replace('"gpt-4o-mini"', '"gpt-4o-minj"'),
      base.replace('"finish_reason":"stop"', '"finish_reason":"length"'),
      base.replace('"finish_reason":"stop"', '"finish_reason" : "stop"'),
      base.replace('"index":0,', ''),
      base.replace('"role":"assistant",', '"role":"assistant","extra":{"model":"x"},'),
      base.replace('{"id":', '{"x":'),
      base.replace('"model":"gpt-4o-mini"', '"model":"gpt-4o-mini"').slice(0, -1),
      base.replace('"prompt_tokens":20', '"prompt_tokens":21'),
    ];
    // More members than an object's names are remembered for: those after are scanned each time.
    const many = (skip: number) =>
      base.replace(
        '"custom_id":"row-1",',
        `${Array.from({ length: 200 }, (_, m) => `"m${m === skip ? 'x' : m}":${m},`).join('')}"custom_id":"row-1",`,
      );
    variants.push(many(-1), many(3), many(100), many(199));
    for (const variant of variants) {
      for (const line of [base, base, variant, variant, base]) expectSame(line);
    }
    // Learned from the line before, the names and kept strings are read from the bytes, not parsed.
    expectSame(base);
    expect(bothWays(base).scanned).toBe(true);
    expect(bothWays(variants[0]!).scanned).toBe(true);
  });

  it('leaves to JSON.parse what is not plain JSON, with its error', () => {
    const base = answerLine({ custom_id: 'row-1', content: 'ok' });
    const bad = [
      base.slice(0, -1),
      `${base}x`,
      `${base},`,
      base.replace('"content":"ok"', '"content":"o\tk"'),
      base.replace('"content":"ok"', '"content":"o\u001fk"'),
      base.replace('"content":"ok"', '"content":"o\u0000k"'),
      base.replace('"content":"ok"', '"content":"\\x"'),
      base.replace('"content":"ok"', '"content":"\\u12g4"'),
      base.replace('"prompt_tokens":20', '"prompt_tokens":020'),
      base.replace('"prompt_tokens":20', '"prompt_tokens":+20'),
      base.replace('"prompt_tokens":20', '"prompt_tokens":2.'),
      base.replace('"prompt_tokens":20', '"prompt_tokens":.2'),
      base.replace('"prompt_tokens":20', '"prompt_tokens":2e'),
      base.replace('"prompt_tokens":20', '"prompt_tokens":-'),
      base.replace('"error":null', '"error":nul'),
      base.replace('"error":null', '"error":True'),
      base.replace('"error":null', "'error':null"),
      base.replace('}}', '},}'),
      base.replace('[{', '[,{'),
      base.replace('"custom_id":"row-1"', '"custom\\u005fid":"row-1"'),
      base.replace('"custom_id":"row-1"', '"custom_id" "row-1"'),
      '[1,2]',
      '"a string"',
      '',
      '   ',
      '{"custom_id":"x"',
      `${'['.repeat(300)}${']'.repeat(300)}`,
      `{"custom_id":"deep","response":${'{"a":'.repeat(300)}1${'}'.repeat(300)}}`,
    ];
    for (const line of bad) expect(expectSame(line)).toBe(false);
    // A first line after a byte order mark goes as text; so does a line that is not valid UTF-8.
    expectSame(`\ufeff${base}`, undefined, 1);
    const notUtf8 = Buffer.from(base.replace('ok', 'o\u00ffk'), 'latin1');
    const a = new ResultParser({ badLines: 'report' }).fromBytes(notUtf8, 0, notUtf8.length, 'f', 2, false);
    const b = new ResultParser({ badLines: 'report' }).fromText(notUtf8.toString('utf8'), 'f', 2, false);
    expect(a).toEqual(b);
    expect(a).toMatchObject({ status: 'failed', error_code: 'BP_INPUT_ENCODING' });
  });

  it('agrees with JSON.parse on generated lines, whole or cut, with labels and a schema (property)', () => {
    const text = fc.string({
      unit: fc.constantFrom('a', 'é', '😀', '"', '\\', '\n', '\u0001', ' ', '{', '}'),
    });
    const member = fc.constantFrom(
      'custom_id',
      'error',
      'response',
      'status_code',
      'body',
      'choices',
      'message',
      'content',
      'usage',
      'prompt_tokens',
      'reasoning_tokens',
      'completion_tokens_details',
      'finish_reason',
      'refusal',
      'data',
      'output',
      'other',
    );
    const value = fc.oneof(fc.jsonValue({ maxDepth: 3 }), text, fc.constant(null));
    const place = fc.constantFrom(
      [],
      ['response'],
      ['response', 'body'],
      ['response', 'body', 'usage'],
      ['response', 'body', 'choices', 0],
      ['response', 'body', 'choices', 0, 'message'],
    );
    fc.assert(
      fc.property(
        text,
        fc.oneof(text, fc.constant(null)),
        fc.array(fc.tuple(place, member, value), { maxLength: 4 }),
        fc.nat(),
        fc.constantFrom('whole', 'cut', 'spaced'),
        fc.constantFrom<ConstructorParameters<typeof ResultParser>[0]>(
          { badLines: 'report' },
          { badLines: 'report', labels: ['positive', 'negative'] },
          {
            badLines: 'report',
            schema: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] },
          },
        ),
        (id, content, edits, cut, form, settings) => {
          let line = edited(answerLine({ custom_id: id, content }), (v) => {
            for (const [path, name, val] of edits) {
              let at: Json = v;
              for (const step of path) at = at !== null && typeof at === 'object' ? at[step] : undefined;
              if (at !== null && typeof at === 'object' && !Array.isArray(at)) at[name] = val;
            }
          });
          if (form === 'cut') line = line.slice(0, cut % (line.length + 1));
          if (form === 'spaced') line = line.replaceAll(',', ' ,\t').replaceAll(':', ': ');
          expectSame(line, settings);
        },
      ),
      { numRuns: 400 },
    );
  });
});
