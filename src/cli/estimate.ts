import { Command } from 'commander';
import { loadMapper, mapperModuleUrl } from '../core/requests/mapper-module.js';
import type { ProviderName } from '../providers/profile.js';
import { cliWording, inCliWords } from './cli-wording.js';
import { addCostOptions, type CostFlags, pricesFrom, reportEstimate } from './cost-options.js';
import { info, type Output, printJson, warningLine } from './output.js';
import {
  addProviderOptions,
  addRequestOptions,
  addRowOptions,
  addShardOptions,
  addSourceOptions,
} from './request-options.js';

interface EstimateFlags extends CostFlags, Record<string, unknown> {
  mapper?: string;
  json?: boolean;
  quiet?: boolean;
}

export function estimateCommand(): Command {
  const command = new Command('estimate')
    .description(
      'tokens and cost a table would take, before anything is submitted (the same options as prepare)',
    )
    .argument('<input>', 'the table to read');
  addRequestOptions(command);
  addSourceOptions(command);
  addRowOptions(command);
  addProviderOptions(command);
  addShardOptions(command);
  addCostOptions(command);
  command
    .option('--json', 'print the estimate as JSON on stdout')
    .option('--quiet', 'print nothing but errors')
    .addHelpText(
      'after',
      `
Input tokens are counted with the model family's own tokenizer (Qwen: the Qwen3 vocabulary; OpenAI:
o200k_base or cl100k_base) plus the chat template's tokens per message; other models get a character
estimate widened by its measured error. Output is a range: from --max-tokens, the labels or schema, or
--output-sample. Thinking tokens bill as output. Prices are an example table, dated: check them.
See docs/cost.md. Exit 4 when --max-cost is below the estimate's upper bound.

Example:
  batchpipe estimate reviews.csv --template 'Classify: {{review}}' --labels positive,negative \\
      --model qwen-plus --provider dashscope --max-tokens 20`,
    )
    .action((input: string, flags: EstimateFlags) => inCliWords(command, () => run(command, input, flags)));
  return command;
}

async function run(command: Command, input: string, flags: EstimateFlags): Promise<void> {
  const { defaultProvider } = await import('../providers/connection.js');
  const { estimateTable } = await import('../jobs/estimate-table.js');
  const out: Output = { json: flags.json === true, quiet: flags.quiet === true };
  const {
    mapper: mapperFile,
    json: _json,
    quiet: _quiet,
    prices: pricesFile,
    maxCost,
    outputSample,
    ...options
  } = flags;
  const mapper = mapperFile ? mapperModuleUrl(mapperFile) : undefined;
  if (mapperFile) await loadMapper(mapper!, mapperFile);
  const prices = await pricesFrom({ prices: pricesFile });
  const { estimate, prepared } = await estimateTable(input, {
    ...options,
    provider: (options.provider as ProviderName | undefined) ?? defaultProvider(),
    mapper,
    prices,
    outputSample,
    onWarning: (w) => info(out, cliWording(command, warningLine(w))),
  });
  if (out.json) printJson({ prepared: summary(prepared), estimate });
  else reportEstimate(out, estimate, (t) => cliWording(command, t));
  // Judged after the estimate is shown, so a refusal says what it refused (exit 4, src/cli/main.ts).
  if (maxCost !== undefined) {
    const { checkCost } = await import('../cost/cost-guard.js');
    checkCost(estimate, maxCost);
  }
}

function summary(prepared: { rows: number; requests: number; rejected: number }) {
  return { rows: prepared.rows, requests: prepared.requests, rejected: prepared.rejected };
}
