import { setMaxListeners } from 'node:events';
import { type Command, Option } from 'commander';
import type { RunEvent } from '../run/batch-run.js';
import { info, type Output } from './output.js';
import { integer, keyValue, number } from './parse-values.js';
import { openProgress, PROGRESS_MODES, type Progress, type ProgressMode } from './progress.js';

export interface RunFlags {
  runDir?: string;
  runsDir?: string;
  completionWindow?: string;
  pollInterval?: number;
  maxAttempts?: number;
  resubmitExpired?: boolean;
  deleteInputFiles?: boolean;
  deleteOutputFiles?: boolean;
  keepFiles?: boolean;
  concurrency?: number;
  requestTimeout?: number;
  lookupDelay?: number;
  newRun?: boolean;
  taskName?: string;
  taskDescription?: string;
  metadata?: Record<string, string>;
  progress?: ProgressMode;
}

/**
 * The command's progress display, opened once (on `out`, so its human lines go through it too); the
 * command stops it before its last lines.
 */
export function progressOf(flags: { progress?: ProgressMode }, out: Output): Progress {
  const open = out.progress as Progress | undefined;
  if (open) return open;
  const progress = openProgress({ mode: flags.progress, quiet: out.quiet, json: out.json });
  out.progress = progress;
  return progress;
}

/** `--progress`, for the commands that wait on a run (and prepare, join). */
export function addProgressOption(command: Command): Command {
  return command.addOption(
    new Option(
      '--progress <mode>',
      'progress on stderr: bars (live, on a terminal), lines (one per state change), json (JSON Lines events, nothing else on stderr), none (default: bars on a terminal, else lines)',
    ).choices(PROGRESS_MODES),
  );
}

/**
 * How a run is carried out: the same flags for submit, run and resume. Options stored in the run
 * (window, attempts, expired policy, delete flags) have no commander default, so a resumed run can
 * tell what was given from what was not; new runs get the defaults from RunOptions.
 */
export function addRunOptions(command: Command): Command {
  return addProgressOption(command)
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
      'seconds between polls of a running batch (default 60 against a provider: no batch is retrieved more than once a minute; 1 for the local service)',
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
      'delete uploaded input files once their batch ended (files count toward the 10,000-file quota; the default for a run whose files could take the account over it)',
    )
    .option('--no-delete-input-files', 'keep uploaded input files')
    .option(
      '--delete-output-files',
      'delete output and error files at the provider once downloaded (the default as for input files)',
    )
    .option('--no-delete-output-files', 'keep output and error files at the provider')
    .option('--keep-files', 'keep every file at the provider (no deleting input, output or error files)')
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

/** `--task-name`, `--task-description`, `--metadata`, for the commands that start runs (submit, run). */
export function addTaskOptions(command: Command): Command {
  return command
    .option(
      '--task-name <name>',
      "the start of every batch's ds_name (DashScope shows it as the task's name): cut so the run's identity still fits in 100 characters after it",
    )
    .option('--task-description <text>', "every batch's ds_description (cut to 200 characters)")
    .option(
      '--metadata <key=value>',
      "more metadata on every batch, repeatable (OpenAI: 16 pairs with batchpipe's own 4, keys up to 64 and values up to 512 characters)",
      keyValue,
    );
}

/** The run options from flags, in the API's spelling; options not given stay undefined. */
export function runOptionsFrom(flags: RunFlags, out: Output, signal: AbortSignal) {
  const progress = progressOf(flags, out);
  return {
    runDir: flags.runDir,
    runsDir: flags.runsDir,
    completionWindow: flags.completionWindow,
    pollInterval: flags.pollInterval,
    maxAttempts: flags.maxAttempts,
    resubmitExpired: flags.resubmitExpired,
    deleteInputFiles: flags.deleteInputFiles,
    deleteOutputFiles: flags.deleteOutputFiles,
    keepFiles: flags.keepFiles,
    concurrency: flags.concurrency,
    requestTimeout: flags.requestTimeout,
    lookupDelay: flags.lookupDelay,
    newRun: flags.newRun,
    taskName: flags.taskName,
    taskDescription: flags.taskDescription,
    metadata: flags.metadata,
    signal,
    onEvent: (event: RunEvent) => progress.event(event),
  };
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
