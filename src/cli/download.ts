import { join } from 'node:path';
import { Command } from 'commander';
import { makeParentDir } from '../internal/durable-write.js';
import { hasManifest } from '../run/run-dir.js';
import { addConnectionOptions } from './connection-options.js';
import { CliExit } from './exit.js';
import { count, info, printJson } from './output.js';
import { type CommonFlags, connectionFor, output, withOutputOptions } from './run-target.js';

export function downloadCommand(): Command {
  const command = new Command('download')
    .description("write a finished run's results, one line per request (or a batch's output and error files)")
    .argument('<target>', 'a run directory or a batch id')
    .option(
      '--out <file>',
      'where to write (default: <run-dir>/results.jsonl; for a batch id, <id>.output.jsonl and <id>.errors.jsonl here)',
    );
  addConnectionOptions(command);
  return withOutputOptions(command).action(async (target: string, flags: CommonFlags & { out?: string }) => {
    const { BatchApi } = await import('../run/batch-api.js');
    const { RESULTS_FILE } = await import('../run/run-dir.js');
    const { writeResults } = await import('../run/run-results.js');
    const { openRun } = await import('../run/start-run.js');
    const { REJECTIONS_FILE } = await import('../run/sharder.js');
    const out = output(flags);
    const { connection, close } = await connectionFor(target, flags);
    try {
      if (await hasManifest(target)) {
        const run = await openRun(target, connection, {});
        let lines: number;
        const path = flags.out ?? join(target, RESULTS_FILE);
        try {
          await run.poll();
          const unfinished = run.manifest.jobs.filter((j) => j.state !== 'done');
          if (unfinished.length > 0) {
            info(
              out,
              `${unfinished.length} batches have not finished: ${unfinished.map((j) => `${j.batch_id ?? j.id} (${j.status ?? j.state})`).join(', ')}`,
            );
            throw new CliExit(1);
          }
          lines = await writeResults(run, path);
        } finally {
          await run.close();
        }
        if (out.json) printJson({ path, lines });
        else {
          const rejected =
            run.manifest.rejected > 0
              ? `; ${count(run.manifest.rejected)} rows rejected before upload are in ${join(target, REJECTIONS_FILE)}`
              : '';
          info(out, `wrote ${count(lines)} result lines, one per request, to ${path}${rejected}`);
        }
        return;
      }
      const api = new BatchApi(connection);
      const batch = await api.retrieve(target);
      const written: string[] = [];
      for (const [fileId, suffix] of [
        [batch.output_file_id, 'output'],
        [batch.error_file_id, 'errors'],
      ] as const) {
        if (!fileId) continue;
        const path = flags.out && suffix === 'output' ? flags.out : `${target}.${suffix}.jsonl`;
        await makeParentDir(path);
        await api.download(fileId, path);
        written.push(path);
      }
      if (out.json) printJson({ batch: batch.id, status: batch.status, files: written });
      else
        info(
          out,
          `${batch.id}: ${batch.status}; wrote ${written.join(', ') || 'nothing (no output or error file yet)'}`,
        );
    } finally {
      await close();
    }
  });
}
