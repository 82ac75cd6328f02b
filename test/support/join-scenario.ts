import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { csvText } from '../fixtures/make-fixtures.js';
import { answerLine, type ErrorKind, errorLine, seeded, shuffle } from './results.js';

/** What came back for one custom_id. */
export type Outcome =
  | { kind: 'ok' | 'truncated'; content: string }
  | { kind: 'error'; error: ErrorKind }
  | { kind: 'missing' };

/** A table, what came back for each of its custom_ids, and which rows prepare rejected. */
export interface Scenario {
  /** Cells of the `text` column. */
  texts: string[];
  /** How custom_ids are made: row-<n>, a unique key column, or a key column several rows share. */
  ids: 'row' | 'unique' | 'shared';
  /** One per distinct custom_id, in order of first use. */
  outcomes: Outcome[];
  /** A failed line before the real one, for some custom_ids (the better status must win). */
  retried: boolean[];
  /** 1-based rows prepare rejected. */
  rejected: number[];
  seed: number;
  partitions: number;
}

const text = fc.string({
  unit: fc.constantFrom('a', 'b', ' ', ',', '"', '\n', '\r\n', 'é', '😀', '\\', '\t', "'"),
  maxLength: 12,
});
const outcome: fc.Arbitrary<Outcome> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('ok' as const), content: text }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncated' as const), content: text }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('error' as const),
      error: fc.constantFrom<ErrorKind>('http', 'expired', 'cancelled', 'string', 'dashscope', 'body-string'),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'missing' as const }) },
);

export const scenarios: fc.Arbitrary<Scenario> = fc
  .record({
    texts: fc.array(text, { maxLength: 60 }),
    ids: fc.constantFrom<Scenario['ids']>('row', 'unique', 'shared'),
    seed: fc.nat(),
    partitions: fc.constantFrom(1, 2, 7, 128),
  })
  .chain((base) => {
    const distinct = base.ids === 'shared' ? Math.min(base.texts.length, 5) : base.texts.length;
    return fc.record({
      texts: fc.constant(base.texts),
      ids: fc.constant(base.ids),
      seed: fc.constant(base.seed),
      partitions: fc.constant(base.partitions),
      outcomes: fc.array(outcome, { minLength: distinct, maxLength: distinct }),
      retried: fc.array(fc.boolean(), { minLength: distinct, maxLength: distinct }),
      rejected: fc.subarray(
        base.texts.map((_, i) => i + 1),
        { maxLength: Math.min(5, base.texts.length) },
      ),
    });
  });

/** The custom_id of each row, and the key column's values (when there is one). */
export function customIds(s: Scenario): { ids: string[]; keys: string[] | undefined } {
  if (s.ids === 'row') return { ids: s.texts.map((_, i) => `row-${i + 1}`), keys: undefined };
  const keys = s.texts.map((_, i) => (s.ids === 'unique' ? `k${i * 7 + 3}` : `shared-${i % 5}`));
  return { ids: keys, keys };
}

/** One joined row as the test expects it. */
export interface ExpectedRow {
  text: string;
  status: string;
  content: string | null;
  error_code: string | null;
}

const ERROR_STATUS: Record<ErrorKind, [string, string]> = {
  http: ['failed', 'invalid_value'],
  expired: ['expired', 'batch_expired'],
  cancelled: ['cancelled', 'batch_cancelled'],
  string: ['failed', 'http_400'],
  dashscope: ['failed', 'InvalidParameter'],
  'body-string': ['failed', 'http_500'],
};

/** Writes the scenario's table, output/error files and rejections; returns paths and what to expect. */
export function writeScenario(dir: string, s: Scenario, name: string) {
  const { ids, keys } = customIds(s);
  const distinct = [...new Set(ids)];
  // A second column keeps rows with an empty text from being empty lines, which CSV readers skip.
  const header = keys ? ['key', 'text'] : ['n', 'text'];
  const rows = s.texts.map((t, i) => (keys ? [keys[i]!, t] : [String(i + 1), t]));
  const source = join(dir, `${name}.csv`);
  writeFileSync(source, csvText(header, rows));
  const output: string[] = [];
  const errors: string[][] = [];
  distinct.forEach((id, d) => {
    const o = s.outcomes[d]!;
    const lines: string[] = [];
    if (s.retried[d] && o.kind !== 'missing') lines.push(errorLine(id, 'http', d));
    if (o.kind === 'ok' || o.kind === 'truncated')
      output.push(
        answerLine({
          custom_id: id,
          content: o.content,
          n: d,
          finish_reason: o.kind === 'ok' ? 'stop' : 'length',
        }),
      );
    else if (o.kind === 'error') lines.push(errorLine(id, o.error, d));
    errors.push(lines);
  });
  const random = seeded(s.seed);
  const out = join(dir, `${name}-output.jsonl`);
  const err = join(dir, `${name}-errors.jsonl`);
  writeFileSync(
    out,
    shuffle(output, random)
      .map((l) => `${l}\n`)
      .join(''),
  );
  // Ids in random order; an id's retry stays before its real outcome (on a tie the later line wins).
  writeFileSync(
    err,
    shuffle(errors, random)
      .flat()
      .map((l) => `${l}\n`)
      .join(''),
  );
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
  const expected: ExpectedRow[] = s.texts.map((t, i) => {
    if (s.rejected.includes(i + 1))
      return { text: t, status: 'rejected', content: null, error_code: 'BP_CONTEXT_EXCEEDED' };
    const o = s.outcomes[distinct.indexOf(ids[i]!)]!;
    if (o.kind === 'missing')
      return { text: t, status: 'missing', content: null, error_code: 'BP_RESULT_MISSING' };
    if (o.kind === 'error') {
      const [status, code] = ERROR_STATUS[o.error];
      return { text: t, status, content: null, error_code: code };
    }
    return { text: t, status: o.kind, content: o.content, error_code: null };
  });
  return { source, out, err, rejections, idColumn: keys ? 'key' : undefined, expected };
}
