import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { compileStructuredOutput } from '../../src/core/structured/structured-output.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { answerLine, type ErrorKind, errorLine, type Flavor, seeded, shuffle } from './results.js';

/** How answers are read: as text, as one of LABELS, or as objects of SCHEMA (a JSON Schema file's content). */
export type Structured = 'none' | 'labels' | 'schema';

export const LABELS = ['positive', 'negative', 'neutral'];
export const SCHEMA = {
  type: 'object',
  properties: {
    sentiment: { type: 'string', enum: ['pos', 'neg'] },
    score: { type: 'number' },
    info: { type: 'object', properties: { city: { type: 'string' } } },
  },
  required: ['sentiment', 'score'],
};

/** One line that comes back for a custom_id. */
export type Line =
  | {
      kind: 'answer';
      content: string;
      finish: 'stop' | 'length';
      flavor: Flavor;
      prompt: number;
      completion: number;
    }
  | { kind: 'error'; error: ErrorKind }
  /** A line cut short, whose custom_id can still be read: the row is `failed` (BP_RESULT_PARSE). */
  | { kind: 'malformed' };

/** A table, the lines that came back for each of its custom_ids, and how they are spread over files. */
export interface Scenario {
  /** Cells of the `text` column. */
  texts: string[];
  /** How custom_ids are made: row-<n>, a unique key column, or a key column several rows share. */
  ids: 'row' | 'unique' | 'shared';
  structured: Structured;
  /** Per distinct custom_id (in order of first use): its lines; none means no line came back (`missing`). */
  lines: Line[][];
  /** 1-based rows prepare rejected. */
  rejected: number[];
  /** Shards: each writes an output and an error file; an id's lines may land in any of them. */
  shards: number;
  /** Lines no row can use (not JSON, no custom_id): reported, never joined. */
  junk: number;
  seed: number;
  partitions: number;
}

const text = fc.string({
  unit: fc.constantFrom('a', 'b', ' ', ',', '"', '\n', '\r\n', 'é', '😀', '\\', '\t', "'"),
  maxLength: 12,
});

/** Answers of each kind: valid and invalid ones (wrong label, wrong type, missing field, not JSON, empty). */
const answers: Record<Structured, fc.Arbitrary<string>> = {
  none: text,
  labels: fc.constantFrom(
    '{"label": "positive"}',
    ' Negative.',
    '"neutral"',
    '```json\n{"label": "negative"}\n```',
    '{"label": "positive", "confidence": 0.9}',
    'so-so',
    '{"label": "meh"}',
    '{"sentiment": "positive"}',
    '',
  ),
  schema: fc.constantFrom(
    '{"sentiment": "pos", "score": 0.5}',
    '{"sentiment": "neg", "score": 1, "info": {"city": "Oslo, \\"Norway\\""}, "extra": [1]}',
    '```json\n{"sentiment": "pos", "score": -2, "info": {}}\n```',
    '{"sentiment": "pos", "score": "high"}',
    '{"score": 1}',
    '{"sentiment": "maybe", "score": 1}',
    'Sure: {"sentiment": "pos"',
  ),
};

function line(structured: Structured): fc.Arbitrary<Line> {
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('answer' as const),
        content: answers[structured],
        finish: fc.constantFrom<'stop' | 'length'>('stop', 'stop', 'stop', 'length'),
        flavor: fc.constantFrom<Flavor>('openai', 'dashscope', 'vllm'),
        prompt: fc.nat(5000),
        completion: fc.nat(900),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('error' as const),
        error: fc.constantFrom<ErrorKind>(
          'http',
          'expired',
          'cancelled',
          'string',
          'dashscope',
          'body-string',
        ),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'malformed' as const }) },
  );
}

export const scenarios: fc.Arbitrary<Scenario> = fc
  .record({
    texts: fc.array(text, { maxLength: 60 }),
    ids: fc.constantFrom<Scenario['ids']>('row', 'unique', 'shared'),
    structured: fc.constantFrom<Structured>('none', 'labels', 'schema'),
    shards: fc.integer({ min: 1, max: 4 }),
    junk: fc.nat(3),
    seed: fc.nat(),
    partitions: fc.constantFrom(1, 2, 7, 128),
  })
  .chain((base) => {
    const distinct = base.ids === 'shared' ? Math.min(base.texts.length, 5) : base.texts.length;
    // Mostly one line per id; sometimes none (missing), sometimes several (a retry, a re-ask, a duplicate).
    const perId = fc.oneof(
      { weight: 6, arbitrary: fc.array(line(base.structured), { minLength: 1, maxLength: 1 }) },
      { weight: 1, arbitrary: fc.constant([]) },
      { weight: 2, arbitrary: fc.array(line(base.structured), { minLength: 2, maxLength: 3 }) },
    );
    return fc.record({
      ...Object.fromEntries(Object.entries(base).map(([k, v]) => [k, fc.constant(v)])),
      lines: fc.array(perId, { minLength: distinct, maxLength: distinct }),
      rejected: fc.subarray(
        base.texts.map((_, i) => i + 1),
        { maxLength: Math.min(5, base.texts.length) },
      ),
    }) as fc.Arbitrary<Scenario>;
  });

/** The custom_id of each row, and the key column's values (when there is one). */
export function customIds(s: Scenario): { ids: string[]; keys: string[] | undefined } {
  if (s.ids === 'row') return { ids: s.texts.map((_, i) => `row-${i + 1}`), keys: undefined };
  const keys = s.texts.map((_, i) => (s.ids === 'unique' ? `k${i * 7 + 3}` : `shared-${i % 5}`));
  return { ids: keys, keys };
}

/** What an error line reports: status, error_code, error_message (tests/support/results.ts errorLine). */
const ERRORS: Record<ErrorKind, [string, string, string]> = {
  http: ['failed', 'invalid_value', 'Invalid value for messages'],
  expired: [
    'expired',
    'batch_expired',
    'This request could not be executed before the completion window expired.',
  ],
  cancelled: [
    'cancelled',
    'batch_cancelled',
    'This request was not executed because the batch was cancelled.',
  ],
  string: ['failed', 'http_400', 'The model `nope` does not exist.'],
  dashscope: ['failed', 'InvalidParameter', 'Range of input length should be [1, 30720]'],
  'body-string': ['failed', 'http_500', 'upstream timed out'],
};
/** Status precedence when an id has several lines (docs/results.md): lower wins, the later line on a tie. */
const RANK: Record<string, number> = {
  ok: 0,
  truncated: 1,
  invalid_output: 2,
  failed: 3,
  expired: 3,
  cancelled: 3,
};

/** A joined row as the test expects it: the text column, then every result column, typed as a Row holds them. */
export type ExpectedRow = Record<string, unknown>;

/** The result columns, in order, for a kind of answer (DESIGN section 6). */
export function resultColumns(structured: Structured): string[] {
  const middle =
    structured === 'labels'
      ? ['label']
      : structured === 'schema'
        ? ['sentiment', 'score', 'info.city']
        : ['content'];
  return ['status', ...middle, 'error_code', 'error_message', 'prompt_tokens', 'completion_tokens'];
}

/** The join options a scenario's answers are read with. */
export function structuredOptions(structured: Structured) {
  if (structured === 'labels') return { labels: LABELS };
  if (structured === 'schema') return { schema: SCHEMA };
  return {};
}

/**
 * Writes the scenario's table, its output and error files (shards' files in random order, lines
 * shuffled in each, junk lines among them) and its rejections; returns the paths (results in the
 * order to give them) and, per row, every column the joined table must hold.
 */
export function writeScenario(dir: string, s: Scenario, name: string) {
  const { ids, keys } = customIds(s);
  const distinct = [...new Set(ids)];
  const random = seeded(s.seed);
  const pick = (n: number) => Math.floor(random() * n);
  // A second column keeps rows with an empty text from being empty lines, which CSV readers skip.
  const header = keys ? ['key', 'text'] : ['n', 'text'];
  const rows = s.texts.map((t, i) => (keys ? [keys[i]!, t] : [String(i + 1), t]));
  const source = join(dir, `${name}.csv`);
  writeFileSync(source, csvText(header, rows));

  // Lines to files: answers to an output file, errors to an error file, of any shard.
  const files = Array.from({ length: s.shards }, (_, k) => [
    join(dir, `${name}-s${k + 1}-output.jsonl`),
    join(dir, `${name}-s${k + 1}-errors.jsonl`),
  ]).flat();
  const content: Array<Array<{ text: string; id?: string; line?: Line }>> = files.map(() => []);
  let n = 0;
  distinct.forEach((id, d) => {
    for (const l of s.lines[d]!) {
      const shard = pick(s.shards);
      const errors = l.kind === 'error' || (l.kind === 'malformed' && random() < 0.5);
      content[shard * 2 + (errors ? 1 : 0)]!.push({ text: lineText(id, l, n++), id, line: l });
    }
  });
  for (let j = 0; j < s.junk; j++)
    content[pick(files.length)]!.push({
      text: j % 2 === 0 ? 'not json at all' : '{"id": "batch_req_x", "response": {"status_code": 200}}',
    });
  const order = shuffle(
    files.map((_, f) => f),
    random,
  );
  const results = order.map((f) => files[f]!);
  // What each id's best line says: lower rank wins, and on a tie the later line in the files' order.
  const best = new Map<string, { rank: number; cells: ExpectedRow }>();
  const structured = compileStructuredOutput(structuredOptions(s.structured));
  for (const f of order) {
    const lines = shuffle(content[f]!, random);
    writeFileSync(files[f]!, lines.map((l) => `${l.text}\n`).join(''));
    lines.forEach((l, i) => {
      if (!l.line || !l.id) return;
      const cells = expectedCells(l.line, l.text, `${files[f]!}:${i + 1}`, s.structured, structured);
      const rank = RANK[cells.status as string]!;
      const seen = best.get(l.id);
      if (!seen || rank <= seen.rank) best.set(l.id, { rank, cells });
    });
  }

  const rejections = join(dir, `${name}-rejections.jsonl`);
  writeFileSync(
    rejections,
    s.rejected
      .map(
        (row) =>
          `${JSON.stringify({ row, file: source, line: row + 1, custom_id: ids[row - 1], code: 'BP_CONTEXT_EXCEEDED', message: 'too long' })}\n`,
      )
      .join(''),
  );
  const columns = resultColumns(s.structured);
  const none = (status: string, code: string, message: string): ExpectedRow => {
    const cells: ExpectedRow = Object.fromEntries(columns.map((c) => [c, null]));
    return { ...cells, status, error_code: code, error_message: message };
  };
  const expected: ExpectedRow[] = s.texts.map((t, i) => {
    const id = ids[i]!;
    if (s.rejected.includes(i + 1))
      return { text: t, ...none('rejected', 'BP_CONTEXT_EXCEEDED', 'too long') };
    const found = best.get(id);
    if (!found)
      return {
        text: t,
        ...none(
          'missing',
          'BP_RESULT_MISSING',
          `no output or error line came back for custom_id ${JSON.stringify(id)}`,
        ),
      };
    return { text: t, ...found.cells };
  });
  const malformed = s.lines.flat().filter((l) => l.kind === 'malformed').length;
  return {
    source,
    results,
    rejections,
    idColumn: keys ? 'key' : undefined,
    structured: structuredOptions(s.structured),
    columns,
    expected,
    /** Lines reported as unusable: the junk, and the cut lines (which still fail their row). */
    problems: s.junk + malformed,
  };
}

/** The text of a line: answers in the providers' shapes, errors as error files hold them, or a cut line. */
function lineText(id: string, l: Line, n: number): string {
  if (l.kind === 'error') return errorLine(id, l.error, n);
  if (l.kind === 'malformed')
    return `{"id": "batch_req_${n}", "custom_id": ${JSON.stringify(id)}, "response": {"status_code": 200, "bo`;
  return answerLine({
    custom_id: id,
    content: l.content,
    n,
    flavor: l.flavor,
    finish_reason: l.finish,
    prompt_tokens: l.prompt,
    completion_tokens: l.completion,
  });
}

/** The result cells one line gives its rows. */
function expectedCells(
  l: Line,
  text: string,
  at: string,
  kind: Structured,
  structured: ReturnType<typeof compileStructuredOutput>,
): ExpectedRow {
  const cells: ExpectedRow = Object.fromEntries(resultColumns(kind).map((c) => [c, null]));
  if (l.kind === 'error') {
    const [status, code, message] = ERRORS[l.error];
    return { ...cells, status, error_code: code, error_message: message };
  }
  if (l.kind === 'malformed') {
    let reason = '';
    try {
      JSON.parse(text);
    } catch (error) {
      reason = (error as Error).message;
    }
    return {
      ...cells,
      status: 'failed',
      error_code: 'BP_RESULT_PARSE',
      error_message: `${at}: result line is not valid JSON (${reason})`,
    };
  }
  const out: ExpectedRow = {
    ...cells,
    status: l.finish === 'length' ? 'truncated' : 'ok',
    prompt_tokens: l.prompt,
    completion_tokens: l.completion,
  };
  if (!structured) return { ...out, content: l.content };
  // Whether an answer validates, and the issue when it does not, are parseResults' to say (tested
  // there); the join must put exactly that beside the right rows.
  const checked = structured.check(l.content);
  if (!checked.ok) {
    if (out.status === 'ok') out.status = 'invalid_output';
    return { ...out, error_code: checked.code, error_message: checked.message };
  }
  for (const path of structured.fields) out[path.join('.')] = pick(checked.value, path);
  return out;
}

function pick(value: unknown, path: string[]): unknown {
  for (const key of path) {
    if (value === null || typeof value !== 'object') return null;
    value = (value as Record<string, unknown>)[key];
  }
  return value === undefined ? null : value;
}

/** An expected row as a CSV reader gives it back: every cell text, null empty, objects as JSON. */
export function asCsv(row: ExpectedRow): Record<string, string> {
  return Object.fromEntries(
    Object.entries(row).map(([k, v]) => [
      k,
      v === null || v === undefined
        ? ''
        : typeof v === 'string'
          ? v
          : typeof v === 'number'
            ? String(v)
            : JSON.stringify(v),
    ]),
  );
}
