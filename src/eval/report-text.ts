import type { Interval } from './bootstrap.js';
import type { EvaluationReport } from './evaluate.js';

const f = (x: number) => x.toFixed(4);
const ci = (i: Interval | null | undefined) => (i ? `  95% CI [${f(i.low)}, ${f(i.high)}]` : '');
const table = (rows: string[][]) => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '),
    )
    .join('\n');
};

/** The report as text for a terminal: scores with their intervals, per-label scores, the confusion matrix. */
export function reportText(report: EvaluationReport): string {
  const { scores: s, intervals: i } = report;
  const unscored = Object.entries(report.unscored)
    .map(([why, n]) => `${n.toLocaleString('en-US')} ${why}`)
    .join(', ');
  const lines = [
    `${report.answer} against ${report.gold}${report.table === undefined ? '' : ` in ${report.table}`}`,
    `${report.rows.toLocaleString('en-US')} rows: ${report.scored.toLocaleString('en-US')} scored${unscored ? `, not scored: ${unscored}` : ''}`,
    '',
    `accuracy     ${f(s.accuracy)}${ci(i?.accuracy)}`,
    `macro F1     ${f(s.macroF1)}${ci(i?.macroF1)}`,
    `weighted F1  ${f(s.weightedF1)}${ci(i?.weightedF1)}`,
    `kappa        ${s.kappa === null ? 'n/a' : f(s.kappa)}${ci(i?.kappa)}`,
  ];
  if (i !== undefined)
    lines.push(`(percentile bootstrap, ${i.resamples.toLocaleString('en-US')} resamples, seed ${i.seed})`);
  lines.push(
    '',
    table([
      ['label', 'precision', 'recall', 'f1', 'support', 'answered'],
      ...s.perLabel.map((l) => [
        l.label,
        f(l.precision),
        f(l.recall),
        f(l.f1),
        String(l.support),
        String(l.predicted),
      ]),
    ]),
    '',
    'confusion matrix (rows: gold, columns: answer)',
    table([
      ['', ...report.labels],
      ...report.matrix.map((row, g) => [report.labels[g]!, ...row.map(String)]),
    ]),
  );
  const a = report.agreement;
  if (a !== undefined)
    lines.push(
      '',
      `agreement of ${report.answer} with ${a.with}: ${f(a.agreement)} over ${a.n.toLocaleString('en-US')} rows, kappa ${a.kappa === null ? 'n/a' : f(a.kappa)}`,
    );
  return lines.join('\n');
}
