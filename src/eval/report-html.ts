import type { EvaluationReport } from './evaluate.js';

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
const esc = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
const f = (x: number) => x.toFixed(4);

/** A cell's background: white at 0, dark blue at the row's whole support. */
function heat(count: number, rowTotal: number): string {
  const share = rowTotal === 0 ? 0 : count / rowTotal;
  const lightness = Math.round(97 - share * 62);
  return `background:hsl(215,70%,${lightness}%);color:${lightness < 60 ? '#fff' : '#111'}`;
}

/**
 * The report as one self-contained HTML fragment (inline styles, no script, nothing fetched): scores
 * with their intervals, the confusion matrix as a heatmap (shaded by the share of each gold row), and
 * per-label precision, recall and F1 as bars. `evaluationPage` wraps it in a page of its own.
 */
export function reportHtml(report: EvaluationReport): string {
  const { scores: s, intervals: i } = report;
  const interval = (x: { low: number; high: number } | null | undefined) =>
    x ? `<span class="ci">95% CI ${f(x.low)} – ${f(x.high)}</span>` : '';
  const summary = [
    ['accuracy', f(s.accuracy), interval(i?.accuracy)],
    ['macro F1', f(s.macroF1), interval(i?.macroF1)],
    ['weighted F1', f(s.weightedF1), interval(i?.weightedF1)],
    ["Cohen's kappa", s.kappa === null ? 'n/a' : f(s.kappa), interval(i?.kappa)],
  ]
    .map(
      ([name, value, range]) =>
        `<tr><th scope="row">${name}</th><td class="num">${value}</td><td>${range}</td></tr>`,
    )
    .join('');
  const unscored = Object.entries(report.unscored)
    .map(([why, n]) => `${n} ${esc(why)}`)
    .join(', ');
  const head = report.labels.map((l) => `<th scope="col">${esc(l)}</th>`).join('');
  const body = report.matrix
    .map((row, g) => {
      const total = row.reduce((a, b) => a + b, 0);
      const cells = row
        .map(
          (count, a) =>
            `<td class="cell" data-gold="${esc(report.labels[g]!)}" data-answer="${esc(report.labels[a]!)}" style="${heat(count, total)}">${count}</td>`,
        )
        .join('');
      return `<tr><th scope="row">${esc(report.labels[g]!)}</th>${cells}</tr>`;
    })
    .join('\n');
  const bar = (name: string, value: number, color: string) =>
    `<div class="bar"><span class="name">${name}</span><span class="track"><span class="fill" style="width:${(value * 100).toFixed(1)}%;background:${color}"></span></span><span class="num">${f(value)}</span></div>`;
  const bars = s.perLabel
    .map(
      (l) =>
        `<div class="label" data-label="${esc(l.label)}"><div class="title">${esc(l.label)} <small>(${l.support} gold, ${l.predicted} answered)</small></div>${bar('precision', l.precision, '#4c78a8')}${bar('recall', l.recall, '#f58518')}${bar('F1', l.f1, '#54a24b')}</div>`,
    )
    .join('\n');
  const a = report.agreement;
  const agreement =
    a === undefined
      ? ''
      : `<p class="agreement">Agreement of <b>${esc(report.answer)}</b> with <b>${esc(a.with)}</b>: ${f(a.agreement)} over ${a.n} rows, kappa ${a.kappa === null ? 'n/a' : f(a.kappa)}.</p>`;
  return `<div class="batchpipe-eval">
<style>
.batchpipe-eval{font-family:system-ui,sans-serif;font-size:14px;color:#111}
.batchpipe-eval table{border-collapse:collapse;margin:8px 0}
.batchpipe-eval th,.batchpipe-eval td{padding:4px 8px;border:1px solid #ddd;text-align:left}
.batchpipe-eval td.num,.batchpipe-eval td.cell{text-align:right;font-variant-numeric:tabular-nums}
.batchpipe-eval td.cell{min-width:48px}
.batchpipe-eval .ci{color:#555}
.batchpipe-eval .bar{display:flex;align-items:center;gap:8px;margin:2px 0}
.batchpipe-eval .bar .name{width:70px}
.batchpipe-eval .track{display:inline-block;width:240px;height:12px;background:#eee}
.batchpipe-eval .fill{display:block;height:12px}
.batchpipe-eval .label{margin:8px 0}
</style>
<h3>${esc(report.answer)} against ${esc(report.gold)}${report.table === undefined ? '' : ` <small>${esc(report.table)}</small>`}</h3>
<p>${report.rows} rows, ${report.scored} scored${unscored ? `; not scored: ${unscored}` : ''}.</p>
<table class="scores">${summary}</table>
${i === undefined ? '' : `<p class="ci">Percentile bootstrap, ${i.resamples} resamples, seed ${i.seed}.</p>`}
<h4>Confusion matrix <small>(rows: gold, columns: answer)</small></h4>
<table class="confusion"><thead><tr><th></th>${head}</tr></thead><tbody>
${body}
</tbody></table>
<h4>Per label</h4>
${bars}
${agreement}
</div>`;
}

/** The report as a whole HTML page, for a file a browser opens offline. */
export function evaluationPage(report: EvaluationReport): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(report.answer)} against ${esc(report.gold)}</title></head>
<body>
${reportHtml(report)}
</body></html>
`;
}
