import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { inCliWords } from './cli-wording.js';
import { info, type Output, printJson } from './output.js';
import { integer } from './parse-values.js';

interface EvalFlags {
  gold: string;
  answer?: string;
  compare?: string;
  compareColumn?: string;
  seed: number;
  resamples: number;
  html?: string;
  json?: boolean;
  quiet?: boolean;
}

export function evalCommand(): Command {
  const command = new Command('eval')
    .description('score a joined table: an answer column against a gold column, with bootstrap intervals')
    .argument('<table>', 'the joined table (.csv, .tsv or .jsonl), as run or join wrote it')
    .requiredOption('--gold <column>', 'the column holding the right answer')
    .option(
      '--answer <column>',
      'the column holding the answer (default: label when the table has it, else content)',
    )
    .option(
      '--compare <column|table>',
      'agreement of the answer with another column of the table, or with the answers in another joined table of the same rows (another run)',
    )
    .option('--compare-column <column>', "the other table's answer column (default: the same as --answer)")
    .option('--seed <n>', 'seed of the bootstrap resampling', integer, 1)
    .option('--resamples <n>', 'bootstrap resamples for the 95% intervals (0: none)', integer, 1000)
    .option(
      '--html <file>',
      'also write the report as a self-contained HTML page (confusion heatmap, per-label bars)',
    )
    .option('--json', 'print the report as JSON on stdout')
    .option('--quiet', 'print nothing but errors (with --html: just write the page)')
    .addHelpText(
      'after',
      `
Scores rows whose status is ok (when the table has a status column) and that have both a gold label
and an answer; the others are counted by status, no_gold or no_answer. Labels are compared as text,
trimmed. Intervals: percentile bootstrap over the scored rows.

Examples:
  batchpipe eval labeled.csv --gold sentiment --html report.html
  batchpipe eval labeled.csv --gold sentiment --compare other-run/labeled.csv`,
    )
    .action((table: string, flags: EvalFlags) => inCliWords(command, () => run(table, flags)));
  return command;
}

/** A --compare value names another table when it is a file that exists; otherwise a column. */
const isTable = (value: string) =>
  /\.(csv|tsv|jsonl|ndjson|parquet|arrow|feather|ipc|arrows)$/i.test(value) && existsSync(value);

async function run(table: string, flags: EvalFlags): Promise<void> {
  const { evaluate } = await import('../eval/evaluate.js');
  const { evaluationPage } = await import('../eval/report-html.js');
  const { reportText } = await import('../eval/report-text.js');
  const { writeFileAtomic } = await import('../internal/durable-write.js');
  const out: Output = { json: flags.json === true, quiet: flags.quiet === true };
  const compareTable = flags.compare !== undefined && isTable(flags.compare) ? flags.compare : undefined;
  const report = await evaluate(table, {
    gold: flags.gold,
    answer: flags.answer,
    compare: compareTable === undefined ? flags.compare : flags.compareColumn,
    compareTable,
    seed: flags.seed,
    resamples: flags.resamples,
  });
  if (flags.html !== undefined) {
    await writeFileAtomic(flags.html, evaluationPage(report));
    info(out, `wrote the report to ${flags.html}`);
  }
  if (out.json) printJson(report);
  else if (!out.quiet) process.stdout.write(`${reportText(report)}\n`);
}
