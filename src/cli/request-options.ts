import { type Command, Option } from 'commander';
import { TABLE_FORMATS } from '../core/tables/table-format.js';
import { PROVIDER_NAMES } from '../providers/profile.js';
import {
  boolean,
  character,
  contextWindows,
  integer,
  jsonObject,
  list,
  number,
  slice,
} from './parse-values.js';
import { schemaFile } from './schema-file.js';
import { byteSizeArg } from './size-arg.js';

/** Options every command that reads a provider's rules takes. */
export function addProviderOptions(command: Command): Command {
  command
    .addOption(
      new Option('--provider <name>', 'provider whose rules and limits apply').choices(PROVIDER_NAMES),
    )
    .option(
      '--models <ids>',
      'extra model ids the provider offers, comma-separated (lists change faster than releases)',
      list,
    );
  return addRuleOptions(command);
}

/** Options that loosen or tighten the provider's rules (commands that connect add --provider and --models themselves). */
export function addRuleOptions(command: Command): Command {
  return command
    .option('--any-model', 'accept any model id (the provider decides)')
    .option(
      '--context-windows <pairs>',
      'known context windows, model=tokens pairs, comma-separated',
      contextWindows,
    )
    .option('--no-check-context', 'skip the check that prompts fit the model context window');
}

/** Options that read the input table. */
export function addSourceOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--format <format>', 'input format (default: from the file extension)').choices(
        TABLE_FORMATS,
      ),
    )
    .option('--delimiter <char>', 'CSV field delimiter (default "," or tab for .tsv)', character)
    .option('--quote <char>', 'CSV quote character', character)
    .option('--no-header', 'the CSV has no header row (columns are column_1, column_2, ... unless --columns)')
    .option('--columns <names>', 'column names, comma-separated (instead of the header row)', list)
    .option('--encoding <label>', 'input text encoding, e.g. utf-8, latin1, utf-16le')
    .option(
      '--relax-column-count',
      'pad short rows with empty values and drop extra fields instead of rejecting them',
    )
    .addOption(
      new Option(
        '--bad-rows <mode>',
        'a malformed row is rejected and the run goes on, or the run fails',
      ).choices(['reject', 'fail']),
    );
}

/** `--slice i/n`: one of n disjoint parts of the table, each a run of its own (prepare and run). */
export function addSliceOption(command: Command): Command {
  return command.option(
    '--slice <i/n>',
    'only slice i (0-based) of n: the rows whose custom_id hashes to it; n processes with i = 0..n-1 cover the table once (docs/scale.md)',
    slice,
  );
}

/** The longest row a table may have (prepare and run). */
export function addMaxRowSizeOption(command: Command): Command {
  return command.option(
    '--max-row-size <size>',
    'a row (or JSONL line) longer than this stops the run: almost always an unclosed quote (default 64MiB)',
    byteSizeArg,
  );
}

/**
 * How prepare reads a table beyond the CSV dialect (join reads with csvSource's defaults). `run` takes
 * only --max-row-size: its join reads every digit of JSONL integers, so ids read as lossy numbers by
 * --big-integers number would not match.
 */
export function addRowOptions(command: Command): Command {
  return addMaxRowSizeOption(command).addOption(
    new Option(
      '--big-integers <mode>',
      'JSONL integers beyond 2^53: strings with every digit (default), or numbers that lose digits',
    ).choices(['string', 'number']),
  );
}

/** Options that build requests from rows. */
export function addRequestOptions(command: Command): Command {
  return command
    .option('--template <text>', 'prompt (or embedding input) with {{column}} placeholders')
    .option(
      '--mapper <file>',
      'module whose default (or `mapper`) export builds the body from a row; .js, .mjs or .ts',
    )
    .option('--system <text>', 'system prompt, with {{column}} placeholders')
    .option('--model <id>', 'model of every request')
    .option('--id-column <name>', 'column whose value is the custom_id (default: row-<n>)')
    .addOption(
      new Option('--endpoint <path>', 'endpoint of every request').choices([
        '/v1/chat/completions',
        '/v1/embeddings',
      ]),
    )
    .option(
      '--image-column <name>',
      'column of images sent beside the prompt (vision models): URLs, or file paths sent as base64; a JSON array for several; repeat for more columns',
      collect,
    )
    .option(
      '--video-column <name>',
      'column of videos as frame lists (a JSON array of image URLs or paths); repeat for more columns',
      collect,
    )
    .option(
      '--media-dir <dir>',
      'where relative image and frame paths start (default: the current directory)',
    )
    .option(
      '--max-image-bytes <bytes>',
      'most bytes of one local image file (default: what fits the line limit as base64)',
      integer,
    )
    .option('--temperature <n>', 'sampling temperature', number)
    .option('--top-p <n>', 'nucleus sampling', number)
    .option('--max-tokens <n>', 'most tokens per answer', integer)
    .option('--seed <n>', 'sampling seed', integer)
    .option('--stop <words>', 'stop sequences, comma-separated', list)
    .option('--presence-penalty <n>', 'presence penalty', number)
    .option('--frequency-penalty <n>', 'frequency penalty', number)
    .option(
      '--enable-thinking <bool>',
      'thinking on or off (DashScope; thinking tokens bill as output)',
      boolean,
    )
    .option('--thinking-budget <n>', 'most thinking tokens per request (DashScope)', integer)
    .option('--dimensions <n>', 'embedding size, for models that take it', integer)
    .option('--response-format <json>', 'response_format object, passed through', jsonObject)
    .addOption(structuredOption('labels'))
    .addOption(structuredOption('schema'))
    .addOption(
      new Option(
        '--structured-output <mode>',
        "how --labels/--schema are asked for (default: the provider's; json_object states the schema in the system prompt)",
      ).choices(['json_schema', 'json_object']),
    )
    .option('--extra-body <json>', 'more body fields, merged at the top level of body', jsonObject);
}

/** The per-file and per-line limits: prepare cuts files within them, validate holds files to them. */
export function addShardOptions(command: Command): Command {
  return command
    .option('--max-lines-per-file <n>', 'requests per file (default: the provider limit, 50,000)', integer)
    .option(
      '--max-bytes-per-file <size>',
      'bytes per file, e.g. 200MB (default: the provider limit; MB is 1,000,000 bytes, MiB 1,048,576)',
      byteSizeArg,
    )
    .option(
      '--max-line-bytes <size>',
      'bytes per request line, e.g. 1MB (default: the provider limit, 6MB)',
      byteSizeArg,
    );
}

/** `--labels` and `--schema`, shared by prepare (requests ask for them) and join (answers parse by them). */
export function structuredOption(name: 'labels' | 'schema'): Option {
  if (name === 'labels')
    return new Option('--labels <list>', 'answers are one of these labels, comma-separated')
      .argParser(list)
      .conflicts('schema');
  return new Option('--schema <file>', 'answers are JSON matching this JSON Schema file').argParser(
    schemaFile,
  );
}

/** A repeatable option's values, in order. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
