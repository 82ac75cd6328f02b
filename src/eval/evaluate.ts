import { BatchpipeError } from '../errors.js';
import { bootstrap, type Intervals } from './bootstrap.js';
import { Confusion } from './confusion.js';
import { type Scores, scores } from './metrics.js';
import { type RowInput, rowItems, rowValues } from './table-rows.js';

export interface EvaluateOptions {
  /** The column holding the right answer. */
  gold: string;
  /** The column holding the model's answer (default `label` when the table has it, else `content`). */
  answer?: string;
  /**
   * Agreement with another answer: a column of the same table, or, with `compareTable`, the answer
   * column of another joined table of the same rows (default: `answer`).
   */
  compare?: string;
  /** Another joined table of the same source rows, in the same order (another run, another model). */
  compareTable?: RowInput;
  /** Bootstrap resamples for the 95% intervals (default 1,000; 0 for none). */
  resamples?: number;
  /** Seed of the resampling (default 1). */
  seed?: number;
}

/** Agreement between two answers to the same rows. */
export interface Agreement {
  /** What was compared with `answer`: a column, or `<table>:<column>`. */
  with: string;
  /** Rows where both answers are there (status ok on both sides). */
  n: number;
  /** Share of those rows where the answers are equal. */
  agreement: number;
  kappa: number | null;
  labels: string[];
  /** matrix[answer][other answer]. */
  matrix: number[][];
}

/** What `evaluate` found: the scores of one answer column against a gold column. */
export interface EvaluationReport {
  kind: 'evaluation';
  /** The table, when it was a file. */
  table?: string;
  gold: string;
  answer: string;
  /** Rows read. */
  rows: number;
  /** Rows scored: status ok (when the table has a status), a gold label and an answer. */
  scored: number;
  /** Rows not scored, by why: their status (`failed`, `invalid_output`, `missing`, ...), `no_gold`, `no_answer`. */
  unscored: Record<string, number>;
  /** Every label seen on either side, sorted. */
  labels: string[];
  /** matrix[gold][answer], in the order of `labels`. */
  matrix: number[][];
  scores: Scores;
  /** 95% percentile bootstrap intervals; absent with `resamples: 0`. */
  intervals?: Intervals;
  agreement?: Agreement;
}

/**
 * Scores a joined table (or any table) whose rows carry a gold label and a model's answer: accuracy,
 * per-label precision, recall and F1, macro and weighted F1, Cohen's kappa and the confusion matrix,
 * with seeded 95% bootstrap intervals, and optionally the agreement with a second answer. Labels are
 * compared as text, trimmed. Rows whose status is not `ok`, or that lack a gold label or an answer, are
 * counted apart and not scored. The table is read as a stream; memory holds 4 bytes a scored row.
 * The function behind `batchpipe eval`.
 */
export async function evaluate(table: RowInput, options: EvaluateOptions): Promise<EvaluationReport> {
  const resamples = options.resamples ?? 1000;
  const seed = options.seed ?? 1;
  if (!Number.isInteger(resamples) || resamples < 0)
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `evaluate: resamples must be a whole number >= 0, got ${resamples}`,
    );
  if (!Number.isInteger(seed))
    throw new BatchpipeError('BP_INVALID_OPTION', `evaluate: seed must be an integer, got ${seed}`);
  if (typeof options.gold !== 'string' || options.gold === '')
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      'evaluate: gold must name the column holding the right answer',
    );

  const confusion = new Confusion();
  const agreement =
    options.compare !== undefined || options.compareTable !== undefined ? new Confusion() : undefined;
  const unscored: Record<string, number> = {};
  const skip = (why: string) => {
    unscored[why] = (unscored[why] ?? 0) + 1;
  };
  let answer = options.answer;
  let compareColumn = options.compare;
  let rows = 0;
  const other =
    options.compareTable === undefined ? undefined : iterate(rowItems(options.compareTable, 'evaluate'));

  for await (const item of rowItems(table, 'evaluate')) {
    const values = rowValues(item);
    if (rows === 0) {
      answer ??= 'label' in values ? 'label' : 'content';
      for (const column of [options.gold, answer])
        if (!(column in values))
          throw new BatchpipeError(
            'BP_INVALID_OPTION',
            `evaluate: the table has no column "${column}" (it has: ${Object.keys(values).join(', ')})`,
            tableFile(table) === undefined ? {} : { file: tableFile(table), line: 1 },
          );
      compareColumn ??= other === undefined ? undefined : answer;
    }
    rows++;
    const status = statusOf(values);
    const mine = textOf(values[answer!]);
    if (agreement !== undefined) {
      let theirs: string;
      let theirStatus: string;
      if (other === undefined) {
        theirs = textOf(values[compareColumn!]);
        theirStatus = status;
      } else {
        const next = await other.next();
        if (next.done) throw mismatch(rows - 1, 'fewer');
        const theirValues = rowValues(next.value);
        theirs = textOf(theirValues[compareColumn!]);
        theirStatus = statusOf(theirValues);
      }
      if (status === 'ok' && theirStatus === 'ok' && mine !== '' && theirs !== '')
        agreement.add(mine, theirs);
    }
    if (status !== 'ok') skip(status);
    else {
      const gold = textOf(values[options.gold]);
      if (gold === '') skip('no_gold');
      else if (mine === '') skip('no_answer');
      else confusion.add(gold, mine);
    }
  }
  if (other !== undefined && !(await other.next()).done) throw mismatch(rows, 'more');
  if (rows === 0)
    throw new BatchpipeError('BP_FILE_EMPTY', 'evaluate: the table has no rows to score', fileContext(table));

  const { labels, matrix } = confusion.matrix(confusion.counts());
  const report: EvaluationReport = {
    kind: 'evaluation',
    ...(tableFile(table) === undefined ? {} : { table: tableFile(table) }),
    gold: options.gold,
    answer: answer!,
    rows,
    scored: confusion.size,
    unscored,
    labels,
    matrix,
    scores: scores(labels, matrix),
  };
  if (resamples > 0 && confusion.size > 0) report.intervals = bootstrap(confusion, resamples, seed);
  if (agreement !== undefined) {
    const pairs = agreement.matrix(agreement.counts());
    const s = scores(pairs.labels, pairs.matrix);
    const compared = tableFile(options.compareTable);
    report.agreement = {
      with: compared === undefined ? compareColumn! : `${compared}:${compareColumn}`,
      n: s.n,
      agreement: s.accuracy,
      kappa: s.kappa,
      labels: pairs.labels,
      matrix: pairs.matrix,
    };
  }
  return report;
}

function iterate(
  items: Iterable<unknown> | AsyncIterable<unknown>,
): AsyncIterator<unknown> | Iterator<unknown> {
  return Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
}

function mismatch(rows: number, side: 'fewer' | 'more'): BatchpipeError {
  return new BatchpipeError(
    'BP_INVALID_OPTION',
    `evaluate: compareTable has ${side} rows than the table (${rows} read): compare joined tables of the same source rows`,
  );
}

/** A joined table's status; a table without one (a plain labelled table) counts every row as answered. */
function statusOf(values: Record<string, unknown>): string {
  const status = values.status;
  return status === undefined || status === null || status === '' ? 'ok' : String(status);
}

function textOf(value: unknown): string {
  if (value === null || value === undefined) return '';
  return (
    typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value)
  ).trim();
}

const tableFile = (table: RowInput | undefined) => (typeof table === 'string' ? table : undefined);
const fileContext = (table: RowInput) => (typeof table === 'string' ? { file: table } : {});
