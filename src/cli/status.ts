import { Command } from 'commander';
import { isBatchpipeError } from '../errors.js';
import { type RunManifest, readManifest } from '../run/manifest.js';
import { hasManifest } from '../run/run-dir.js';
import { addConnectionOptions, openConnection } from './connection-options.js';
import { type CostFlags, reportUsage } from './cost-options.js';
import { info, type Output, printJson } from './output.js';
import { reportRun } from './run-report.js';
import { type CommonFlags, connectionFor, output, withOutputOptions } from './run-target.js';

export function statusCommand(): Command {
  const command = new Command('status')
    .description('where a run (or one batch) stands: polls once, downloads what ended')
    .argument('<target>', 'a run directory or a batch id');
  addConnectionOptions(command);
  command.option(
    '--prices <file.json>',
    'price table for the cost of the tokens reported so far (default: the shipped example table)',
  );
  return withOutputOptions(command)
    .option('--offline', 'read the run manifest only; do not ask the provider')
    .action(async (target: string, flags: CommonFlags & CostFlags & { offline?: boolean }) => {
      const { BatchApi } = await import('../run/batch-api.js');
      const { openRun } = await import('../run/start-run.js');
      const out = output(flags);
      if (await hasManifest(target)) {
        if (flags.offline) return reportSaved(out, target, flags);
        const { connection, close } = await connectionFor(target, flags);
        try {
          let run: Awaited<ReturnType<typeof openRun>>;
          try {
            run = await openRun(target, connection, {});
          } catch (error) {
            // Another process works on the run (a `run` or `resume` polling it): its manifest is current.
            if (!isBatchpipeError(error) || error.code !== 'BP_RUN_LOCKED') throw error;
            // On stderr beside --json too: the report below is not fresh from the provider.
            if (!out.quiet)
              process.stderr.write(
                `note ${error.code}: ${error.message}\nshowing the run as that process last saved it, without polling\n`,
              );
            return await reportSaved(out, target, flags);
          }
          try {
            await run.poll();
          } finally {
            await run.close();
          }
          await reportWithUsage(out, run.dir, run.manifest, flags, (usage) =>
            reportRun(out, run, stateOf(run.manifest.jobs), usage),
          );
        } finally {
          await close();
        }
        return;
      }
      const { connection, close } = await openConnection(flags);
      try {
        const batch = await new BatchApi(connection).retrieve(target);
        if (out.json) printJson(batch);
        else
          info(
            out,
            `${batch.id}: ${batch.status}${batch.request_counts ? `, ${batch.request_counts.completed}/${batch.request_counts.total} completed, ${batch.request_counts.failed} failed` : ''}`,
          );
      } finally {
        await close();
      }
    });
}

/** The run as its manifest says, without the lock or the provider (`--offline`). */
async function reportSaved(out: Output, target: string, flags: CostFlags): Promise<void> {
  const { BatchRun } = await import('../run/batch-run.js');
  const manifest = await readManifest(target);
  const run = new BatchRun(target, manifest, undefined as never, {
    pollIntervalMs: 0,
    concurrency: 1,
    stuckGraceMs: 0,
  });
  await reportWithUsage(out, target, manifest, flags, (usage) =>
    reportRun(out, run, stateOf(manifest.jobs), usage),
  );
}

/**
 * The run's report, with the tokens its result files downloaded so far reported and what they cost:
 * for a run in progress, the part that has ended.
 */
async function reportWithUsage(
  out: Output,
  runDir: string,
  manifest: RunManifest,
  flags: CostFlags,
  report: (extra: Record<string, unknown>) => void,
): Promise<void> {
  const { downloadedOutputs, usageOfFiles } = await import('../cost/usage.js');
  const { runUsage } = await import('../jobs/estimate-table.js');
  const { pricesFrom } = await import('./cost-options.js');
  const totals = await usageOfFiles(downloadedOutputs(runDir, manifest));
  const prices = await pricesFrom(flags);
  const usage = runUsage(
    totals,
    manifest.shards.map((s) => s.model),
    manifest.provider.name,
    prices,
    undefined,
  );
  report({ usage });
  reportUsage(out, usage, false);
}

export function stateOf(jobs: Array<{ state: string; note: string | null }>): 'done' | 'running' | 'stuck' {
  if (jobs.every((j) => j.state === 'done')) return 'done';
  return jobs.some((j) => j.note !== null && j.state !== 'done') ? 'stuck' : 'running';
}
