/** Scores of one label, treating it as the positive class. */
export interface LabelScores {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** Rows whose gold label is this one. */
  support: number;
  /** Rows answered with this label. */
  predicted: number;
}

export interface Scores {
  /** Rows scored. */
  n: number;
  accuracy: number;
  macroF1: number;
  weightedF1: number;
  /** Cohen's kappa; null when chance agreement is total (a single label on both sides). */
  kappa: number | null;
  perLabel: LabelScores[];
}

/**
 * Scores from a confusion matrix (matrix[gold][answer]). Precision, recall and F1 of a label with no
 * rows to divide by are 0, as scikit-learn reports them (`zero_division=0`); macro F1 averages every
 * label seen on either side, weighted F1 weighs each label's F1 by its gold support.
 */
export function scores(labels: readonly string[], matrix: readonly (readonly number[])[]): Scores {
  const k = labels.length;
  const gold = matrix.map((row) => row.reduce((a, b) => a + b, 0));
  const answered = labels.map((_, a) => matrix.reduce((sum, row) => sum + row[a]!, 0));
  const n = gold.reduce((a, b) => a + b, 0);
  let agree = 0;
  for (let i = 0; i < k; i++) agree += matrix[i]![i]!;
  const perLabel = labels.map((label, i): LabelScores => {
    const tp = matrix[i]![i]!;
    const precision = ratio(tp, answered[i]!);
    const recall = ratio(tp, gold[i]!);
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    return { label, precision, recall, f1, support: gold[i]!, predicted: answered[i]! };
  });
  const chance = n === 0 ? 0 : labels.reduce((sum, _, i) => sum + gold[i]! * answered[i]!, 0) / (n * n);
  const observed = ratio(agree, n);
  return {
    n,
    accuracy: observed,
    macroF1: k === 0 ? 0 : perLabel.reduce((sum, s) => sum + s.f1, 0) / k,
    weightedF1: ratio(
      perLabel.reduce((sum, s) => sum + s.f1 * s.support, 0),
      n,
    ),
    kappa: n === 0 || chance === 1 ? null : (observed - chance) / (1 - chance),
    perLabel,
  };
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
