import { Command } from 'commander';
import { addConnectionOptions, openConnection } from './connection-options.js';
import { info, printJson } from './output.js';
import { integer } from './parse-values.js';
import { type CommonFlags, output, withOutputOptions } from './run-target.js';

interface ListFlags extends CommonFlags {
  status?: string;
  dsName?: string;
  inputFileIds?: string;
  createAfter?: string;
  createBefore?: string;
  limit: number;
}

export function listCommand(): Command {
  const command = new Command('list')
    .description("the provider's batches, newest first, with DashScope's filters")
    .option('--status <list>', 'statuses, comma-separated (e.g. in_progress,completed)')
    .option('--ds-name <name>', 'task name (fuzzy at DashScope)')
    .option('--input-file-ids <ids>', 'input file ids, comma-separated (at most 20)')
    .option('--create-after <time>', 'created after, yyyyMMddHHmmss')
    .option('--create-before <time>', 'created before, yyyyMMddHHmmss')
    .option('--limit <n>', 'most batches to show', integer, 20);
  addConnectionOptions(command);
  return withOutputOptions(command).action(async (flags: ListFlags) => {
    const { BatchApi } = await import('../run/batch-api.js');
    const out = output(flags);
    const { connection, close } = await openConnection(flags);
    try {
      const query: Record<string, string | number> = { limit: Math.min(flags.limit, 100) };
      if (flags.status) query.status = flags.status;
      if (flags.dsName) query.ds_name = flags.dsName;
      if (flags.inputFileIds) query.input_file_ids = flags.inputFileIds;
      if (flags.createAfter) query.create_after = flags.createAfter;
      if (flags.createBefore) query.create_before = flags.createBefore;
      const batches = [];
      for await (const batch of new BatchApi(connection).list(query)) {
        batches.push(batch);
        if (batches.length >= flags.limit) break;
      }
      if (out.json) return printJson(batches);
      for (const b of batches) {
        const counts = b.request_counts ? `${b.request_counts.completed}/${b.request_counts.total}` : '';
        info(
          out,
          `${b.id}  ${b.status}  ${counts}  ${b.metadata?.ds_name ?? ''}  ${new Date(b.created_at * 1000).toISOString()}`,
        );
      }
      if (batches.length === 0) info(out, 'no batches');
    } finally {
      await close();
    }
  });
}
