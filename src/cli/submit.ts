import { stat } from 'node:fs/promises';
import { Command } from 'commander';
import type { BatchRun } from '../run/batch-run.js';
import {
  addConnectionOptions,
  announceEngine,
  type ConnectionFlags,
  openConnection,
} from './connection-options.js';
import { CliExit, detached } from './exit.js';
import { notice, type Output } from './output.js';
import {
  addNewRunOption,
  addRunOptions,
  addTaskOptions,
  detachOnInterrupt,
  progressOf,
  type RunFlags,
  runOptionsFrom,
} from './run-options.js';
import { reportRun } from './run-report.js';

interface SubmitFlags extends RunFlags, ConnectionFlags {
  wait: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function submitCommand(): Command {
  const command = new Command('submit')
    .description(
      'submit request files as batches and (by default) wait for them: durable, resumable, never twice',
    )
    .argument('<requests>', 'a directory from batchpipe prepare, or a JSONL file of request lines')
    .option('--no-wait', 'return once every batch is created; follow up with status, resume or download');
  addRunOptions(command);
  addNewRunOption(command);
  addTaskOptions(command);
  addConnectionOptions(command);
  return command
    .option('--json', 'print the run as JSON on stdout')
    .option('--quiet', 'print nothing but errors')
    .addHelpText(
      'after',
      `
The run lives in .batchpipe/runs/<run-id> (or --run-dir): a manifest saved after every step, so the
same command on the same requests resumes the run instead of submitting again, after a crash or Ctrl-C.
Failed requests are data: exit 0 once the run finished, or with --no-wait once every batch is created.`,
    )
    .action(async (requests: string, flags: SubmitFlags) => {
      const out: Output = { json: flags.json === true, quiet: flags.quiet === true };
      progressOf(flags, out);
      const interrupt = detachOnInterrupt(out);
      const { connection, close } = await openConnection(flags);
      await announceEngine(out.quiet, connection, notice(out));
      try {
        const options = runOptionsFrom(flags, out, interrupt.signal);
        const run = await startFrom(requests, connection, options);
        try {
          await finishCommand(out, run, flags.wait);
        } finally {
          await run.close();
        }
      } finally {
        interrupt.dispose();
        await close();
      }
    });
}

/** Creates or resumes the run for a prepared directory or a request file; it comes back open (locked). */
async function startFrom(
  requests: string,
  connection: Awaited<ReturnType<typeof openConnection>>['connection'],
  options: ReturnType<typeof runOptionsFrom>,
): Promise<BatchRun> {
  const { createOrResumeRun, readPrepared } = await import('../run/start-run.js');
  const { RUNS_DIR } = await import('../run/run-dir.js');
  const { stageRequestFile } = await import('../jobs/stage-request-file.js');
  if ((await stat(requests)).isDirectory()) {
    return createOrResumeRun(requests, await readPrepared(requests), connection, options, false);
  }
  const staged = await stageRequestFile(requests, options.runsDir ?? RUNS_DIR, connection);
  return createOrResumeRun(staged.dir, staged.summary, connection, options, true);
}

/** Submits, then waits (unless told not to), then reports; stuck or failed runs exit 1. */
export async function finishCommand(out: Output, run: BatchRun, wait: boolean): Promise<void> {
  if (!wait) {
    try {
      await run.submit();
    } finally {
      out.progress?.stop();
    }
    reportRun(out, run, run.detached ? 'detached' : 'submitted');
    if (run.detached) throw detached(run.dir);
    return;
  }
  let state: Awaited<ReturnType<BatchRun['wait']>>;
  try {
    state = await run.wait();
  } finally {
    // Bars end before the report, which is plain lines below them.
    out.progress?.stop();
  }
  reportRun(out, run, state);
  if (state === 'stuck') throw new CliExit(1);
  if (state === 'detached') throw detached(run.dir);
}
