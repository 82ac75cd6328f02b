import { describe, expect, it } from 'vitest';
import { RequestScanner, type ScannedBody } from '../../src/cost/request-scan.js';
import { random as rng } from '../fixtures/make-fixtures.js';
import { corpus, KINDS } from './corpus.js';

/** What the estimate reads of a body (estimate.ts, request-tokens.ts), taken from JSON.parse's. */
function readFields(body: ScannedBody): unknown {
  const messages = Array.isArray(body.messages)
    ? body.messages.map((m) =>
        m !== null && typeof m === 'object' ? { role: m.role, name: m.name, content: m.content } : m,
      )
    : body.messages;
  return {
    messages,
    max_tokens: body.max_tokens,
    max_completion_tokens: body.max_completion_tokens,
    n: body.n,
    enable_thinking: body.enable_thinking,
    thinking_budget: body.thinking_budget,
    response_format: body.response_format,
    input: body.input,
  };
}

function agree(scanner: RequestScanner, line: string): void {
  const parsed = (JSON.parse(line) as { body?: ScannedBody }).body ?? {};
  expect(readFields(scanner.body(Buffer.from(line))), line.slice(0, 200)).toEqual(readFields(parsed));
}

/** Characters JSON must or may escape, and ones that take several UTF-8 bytes. */
const ODD = [
  '"',
  '\\',
  '\n',
  '\t',
  '\r',
  '\u0000',
  '\u001f',
  '/',
  '\u2028',
  'é',
  '😀',
  '\ud83d',
  '中',
  '\\"',
  '\\\\"',
];

describe('RequestScanner', () => {
  it('reads what JSON.parse reads from lines prepare writes, texts in every script, and reads them itself', () => {
    const scanner = new RequestScanner();
    const system = 'You are a careful annotator. Answer with one word: positive, negative or neutral.';
    let lines = 0;
    for (const kind of KINDS)
      for (const [i, text] of corpus(kind, 200, 60, 7).entries()) {
        const line = JSON.stringify({
          custom_id: `row-${i}`,
          method: 'POST',
          url: '/v1/chat/completions',
          body: {
            model: 'qwen-plus',
            messages: [
              { role: 'system', content: system },
              { role: 'user', content: `Title: ${i}\nReview: ${text}` },
            ],
            temperature: 0,
            ...(i % 3 === 0 && { max_tokens: 16 }),
            ...(i % 5 === 0 && { enable_thinking: i % 2 === 0, thinking_budget: 1e3 }),
          },
        });
        agree(scanner, line);
        lines++;
      }
    // JSON text: quotes and backslashes, read by the scanner all the same.
    expect(scanner.scanned).toBe(lines);
    expect(scanner.parsed).toBe(0);
  });

  it('agrees with JSON.parse on generated lines with escapes, odd characters and shuffled fields', () => {
    const random = rng(15);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const text = () => {
      let s = '';
      const n = Math.floor(random() * 30);
      for (let i = 0; i < n; i++)
        s += random() < 0.3 ? pick(ODD) : pick(['a', 'b ', 'word ', '1', '{', '}', '[', ']', ',', ':']);
      return s;
    };
    const scanner = new RequestScanner();
    for (let i = 0; i < 3000; i++) {
      const messages = Array.from({ length: Math.floor(random() * 4) }, () => {
        const m: Record<string, unknown> = {
          role: pick(['system', 'user', 'assistant', 'tool']),
          content: text(),
        };
        if (random() < 0.2) m.name = text();
        if (random() < 0.1) m.tool_calls = [{ id: text(), function: { name: 'f', arguments: text() } }];
        if (random() < 0.05) m.content = null;
        return m;
      });
      const body: Record<string, unknown> = { model: text() || 'm', messages };
      for (const [name, value] of [
        ['max_tokens', Math.floor(random() * 100)],
        ['max_completion_tokens', random() < 0.5 ? 5e2 : 12.5],
        ['n', 2],
        ['temperature', -0.25],
        ['seed', -3],
        ['enable_thinking', random() < 0.5],
        ['thinking_budget', 4096],
        ['stop', [text(), text()]],
        ['metadata', { a: { b: [1, null, true, text()] } }],
        ['stream', false],
        ['logit_bias', {}],
        ['tools', []],
      ] as const)
        if (random() < 0.4) body[name] = value;
      const fields = Object.entries({ custom_id: text(), method: 'POST', url: '/v1/chat/completions', body });
      fields.sort(() => random() - 0.5);
      const spaced = random() < 0.2;
      agree(
        scanner,
        JSON.stringify(Object.fromEntries(fields), null, spaced ? 1 : undefined).replaceAll(
          '\n',
          spaced ? ' ' : '\n',
        ),
      );
    }
  });

  it('leaves lines it does not read itself to JSON.parse, with the same result', () => {
    const scanner = new RequestScanner();
    const odd = [
      // Content as parts (an image), a response format with a schema, an embeddings input.
      '{"custom_id":"a","body":{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"x"}}]}]}}',
      '{"custom_id":"b","body":{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object"}}}}}',
      '{"custom_id":"c","url":"/v1/embeddings","body":{"model":"e","input":["a","b",[1,2]]}}',
      // A key spelled with escapes, values of unexpected kinds, duplicate keys (the last one counts).
      '{"custom_id":"d","body":{"model":"m","\\u006dessages":[{"role":"user","content":"x"}]}}',
      '{"custom_id":"e","body":{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"12","n":null}}',
      '{"custom_id":"f","body":{"max_tokens":1,"max_tokens":2,"messages":[],"messages":[{"role":1,"content":"y"}]}}',
      '{"custom_id":"g","body":{"messages":[{"role":"user","content":"\\ud83d\\ude00 \\"q\\" \\\\"}],"enable_thinking":"yes"}}',
      '{"custom_id":"h","body":{"messages":{"role":"user"}}}',
      '{"custom_id":"i","body":null}',
      '{"custom_id":"j"}',
      '{"custom_id":"k","body":{"messages":[{"role":"user","content":"x"}],"n":1.5e1,"max_tokens":-0}}',
      '  {"custom_id" : "l" , "body" : { "messages" : [ { "role" : "system" , "content" : "s" } ] } }  ',
    ];
    for (const line of odd) agree(scanner, line);
    expect(scanner.parsed).toBeGreaterThan(0);
    expect(scanner.scanned).toBeGreaterThan(0);
  });

  it('undoes every JSON escape itself as JSON.parse does, and leaves a bad escape to JSON.parse', () => {
    const scanner = new RequestScanner();
    const contents = [
      String.raw`\u00e9\u00E9 \ud83d\ude00 lone \ud83d end`,
      String.raw`\/ \b \f \n \r \t \" \\ \\\" \\\\`,
      String.raw`\"quoted\" at both ends\"`,
      String.raw`\\`,
      String.raw`é 中 😀 \n é 中 😀 \u4e2d`,
      String.raw`\u0000\u001F\u2028`,
    ];
    for (const content of contents)
      agree(scanner, `{"custom_id":"a","body":{"messages":[{"role":"user","content":"${content}"}]}}`);
    expect(scanner.scanned).toBe(contents.length);
    expect(scanner.parsed).toBe(0);
    for (const bad of [String.raw`\x41`, String.raw`\u12`, String.raw`\u12G4`, String.raw`\ `])
      expect(() =>
        scanner.body(Buffer.from(`{"body":{"messages":[{"role":"user","content":"${bad}"}]}}`)),
      ).toThrow(SyntaxError);
  });

  it('throws as JSON.parse does on a line that is not JSON', () => {
    const scanner = new RequestScanner();
    for (const line of [
      '{"custom_id":"a","body":{"messages":[',
      'not json',
      '{"body":{"messages":[]}} trailing',
    ])
      expect(() => scanner.body(Buffer.from(line))).toThrow(SyntaxError);
  });

  it('hands out the same system text while its bytes repeat, and a new one when they change', () => {
    const scanner = new RequestScanner();
    const line = (system: string, user: string) =>
      Buffer.from(
        JSON.stringify({
          body: {
            messages: [
              { role: 'system', content: system },
              { role: 'user', content: user },
            ],
          },
        }),
      );
    const first = scanner.body(line('be brief', 'a')).messages as Array<{ content: string }>;
    const second = scanner.body(line('be brief', 'b')).messages as Array<{ content: string }>;
    const third = scanner.body(line('be BRIEF', 'c')).messages as Array<{ content: string }>;
    expect(second[0]!.content).toBe('be brief');
    expect(second[1]!.content).toBe('b');
    expect(third[0]!.content).toBe('be BRIEF');
    expect(first[0]!.content).toBe('be brief');
  });
});
