import { setMaxListeners } from 'node:events';
import { type Command, Option } from 'commander';
import type { RunEvent } from '../run/batch-run.js';
import { count, info, type Output, plural } from './output.js';
import { integer, number } from './parse-values.js';

export interface RunFlags {
  runDir?: string;
  runsDir?: string;
  completionWindow?: string;
  pollInterval?: number;
  maxAttempts?: number;
  resubmitExpired?: boolean;
  deleteInputFiles?: boolean;
  deleteOutputFiles?: boolean;
  concurrency?: number;
  requestTimeout?: number;
  lookupDelay?: number;
  newRun?: boolean;
}

/**
 * How a run is carried out: the same flags for submit, run and resume. Options stored in the run
 * (window, attempts, expired policy, delete flags) have no commander default, so a resumed run can
 * tell what was given from what was not; new runs get the defaults from RunOptions.
 */
export function addRunOptions(command: Command): Command {
  return command
    .option(
      '--run-dir <dir>',
      'directory of this run (default: .batchpipe/runs/<run-id>, the id a hash of the requests)',
    )
    .option('--runs-dir <dir>', 'where runs live', '.batchpipe/runs')
    .option(
      '--completion-window <window>',
      'how long the provider may take: 24h to 336h (DashScope; 14d means 336h) or 24h (OpenAI) (default: 24h)',
    )
    .option(
      '--poll-interval <seconds>',
      'seconds between polls of a running batch (default 60; 1 for the local service)',
      number,
    )
    .option(
      '--max-attempts <n>',
      'attempts per request: retryable failures are sent again (default: 3)',
      integer,
    )
    .option('--resubmit-expired', 'send again what an expired batch left unrun (the default)')
    .option('--no-resubmit-expired', 'do not send again what an expired batch left unrun')
    .option(
      '--delete-input-files',
      'delete uploaded input files once their batch ended (files count toward the 10,000-file quota)',
    )
    .option('--no-delete-input-files', 'keep uploaded input files (the default)')
    .option('--delete-output-files', 'delete output and error files at the provider once downloaded')
    .option('--no-delete-output-files', 'keep output and error files at the provider (the default)')
    .addOption(
      new Option('--concurrency <n>', 'batches uploaded and created at once').argParser(integer).default(4),
    )
    .option(
      '--request-timeout <seconds>',
      'seconds an API call may take before it is abandoned (uploads and creates are then looked up) (default: 600)',
      number,
    )
    .option(
      '--lookup-delay <seconds>',
      'seconds after an upload or create was sent before looking for its effect, after a lost reply or a crash: the provider may still be committing it (default: 30; 1 for the local service)',
      number,
    );
}

/** `--new-run`, for the commands that start runs (submit, run). */
export function addNewRunOption(command: Command): Command {
  return command.option(
    '--new-run',
    'submit afresh as a run of its own, even when a run of the same work (from another run directory, or one deleted) made its batches at the provider already: they are billed again',
  );
}

/** The run options from flags, in the API's spelling; options not given stay undefined. */
export function runOptionsFrom(flags: RunFlags, out: Output, signal: AbortSignal) {
  return {
    runDir: flags.runDir,
    runsDir: flags.runsDir,
    completionWindow: flags.completionWindow,
    pollInterval: flags.pollInterval,
    maxAttempts: flags.maxAttempts,
    resubmitExpired: flags.resubmitExpired,
    deleteInputFiles: flags.deleteInputFiles,
    deleteOutputFiles: flags.deleteOutputFiles,
    concurrency: flags.concurrency,
    requestTimeout: flags.requestTimeout,
    lookupDelay: flags.lookupDelay,
    newRun: flags.newRun,
    signal,
    onEvent: (event: RunEvent) => {
      // A changed option is a warning: it shows beside --json output too (on stderr), never silently.
      if (event.type === 'option') {
        if (!out.quiet) process.stderr.write(`${eventLine(event)}\n`);
      } else info(out, eventLine(event));
    },
  };
}

export function eventLine(event: RunEvent): string {
  switch (event.type) {
    case 'uploaded':
      return `uploaded ${event.job} as ${event.file_id}`;
    case 'created':
      return `created ${event.batch_id} for ${event.job}`;
    case 'status':
      return `${event.batch_id} (${event.job}): ${event.status}, ${event.completed + event.failed}/${event.total} done, ${event.failed} failed`;
    case 'finished':
      return `${event.job}: ${event.status}: ${event.ok} ok, ${event.failed} failed, ${event.expired} expired, ${event.cancelled} cancelled${event.retry > 0 ? `, ${event.retry} to retry` : ''}`;
    case 'retry':
      return `${event.job}: sending ${event.requests} requests again`;
    case 'adopted':
      return `adopted ${plural(event.batches, 'batch', 'batches')}${event.uploads > 0 ? ` and ${plural(event.uploads, 'upload')}` : ''} that an earlier run of the same work made at the provider (${event.run}, found by name): ${event.toSend === 0 ? 'nothing' : `${count(event.toSend)} of ${plural(event.jobs, 'shard')}`} to send (--new-run submits afresh)`;
    case 'stuck':
      return `${event.batch_id} (${event.job}) is still ${event.status} well past its completion window`;
    case 'option':
      return event.applied
        ? `warning: --${flagName(event.option, event.value)} holds for this run from now on (it began with --${flagName(event.option, event.was)})`
        : `warning: --${flagName(event.option, event.value)} is ignored: the run keeps --${flagName(event.option, event.was)}, the value its batches were created with (a new value is a new run)`;
    case 'note':
      return event.message;
  }
}

/** `maxAttempts` 5 -> `max-attempts 5`; booleans as the flag that sets them (`no-resubmit-expired`). */
function flagName(option: string, value: string): string {
  const flag = option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  if (value === 'true') return flag;
  if (value === 'false') return `no-${flag}`;
  return `${flag} ${value}`;
}

/**
 * An AbortSignal that Ctrl-C aborts: the first press detaches (batches keep running at the provider,
 * the run resumes later); a second one exits at once.
 */
export function detachOnInterrupt(
  out: Output,
  message = 'detaching: the batches keep running at the provider; resume with `batchpipe resume <run-dir>` (Ctrl-C again to quit now)',
): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  // Every poll and download listens on this one signal: many at once is by design.
  setMaxListeners(0, controller.signal);
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    info(out, message);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
