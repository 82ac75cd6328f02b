import { Command } from 'commander';
import { hasManifest } from '../run/run-dir.js';
import { addConnectionOptions } from './connection-options.js';
import { info, printJson } from './output.js';
import { reportRun } from './run-report.js';
import { type CommonFlags, connectionFor, output, withOutputOptions } from './run-target.js';
import { stateOf } from './status.js';

export function cancelCommand(): Command {
  const command = new Command('cancel')
    .description(
      'cancel a run (or one batch): running batches are cancelled, nothing more is sent; completed requests are kept',
    )
    .argument('<target>', 'a run directory or a batch id');
  addConnectionOptions(command);
  return withOutputOptions(command).action(async (target: string, flags: CommonFlags) => {
    const { BatchApi } = await import('../run/batch-api.js');
    const { openRun } = await import('../run/start-run.js');
    const out = output(flags);
    const { connection, close } = await connectionFor(target, flags);
    try {
      if (await hasManifest(target)) {
        const run = await openRun(target, connection, {});
        try {
          await run.cancel();
        } finally {
          await run.close();
        }
        reportRun(out, run, stateOf(run.manifest.jobs));
        return;
      }
      const batch = await new BatchApi(connection).cancel(target);
      if (out.json) printJson(batch);
      else info(out, `${batch.id}: ${batch.status}`);
    } finally {
      await close();
    }
  });
}
