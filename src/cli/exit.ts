import { BatchpipeError } from '../errors.js';

/** Ends a command with an exit code after it has said why (e.g. validate found problems). */
export class CliExit extends Error {
  readonly exitCode: number;
  constructor(exitCode: number) {
    super(`exit ${exitCode}`);
    this.exitCode = exitCode;
  }
}

/** The exit codes every command keeps; a script can branch on them. docs/errors.md has the same table. */
export const EXIT = { ok: 0, failed: 1, usage: 2, detached: 3, costGuard: 4 } as const;

export const EXIT_CODES_HELP = `
Exit codes (the same for every command):
  0  success: the table was written, or a command that writes none finished (--dry-run, submit --no-wait)
  1  the run failed: a batch failed or is stuck, a file could not be read or written, a check found
     problems, no row got an answer (unless --allow-empty), rows changed since their requests
     were made (unless --allow-stale)
  2  usage error: an unknown option or a bad value
  3  detached (Ctrl-C, SIGTERM): the batches go on at the provider; the command printed resumes the run
  4  refused by a cost guard
Rows that failed among rows that were answered are data, not a failure.`;

/** Exit 3 after a detach, naming the command that carries the run on. */
export function detached(runDir: string): CliExit {
  process.stderr.write(`detached: resume with \`batchpipe resume ${runDir}\`\n`);
  return new CliExit(EXIT.detached);
}

/** Statuses that carry an answer. */
const ANSWERED = ['ok', 'truncated'] as const;

/**
 * A table where no row got an answer is a failed run for a script (`run ... && next-step` must stop),
 * unless the user said an empty answer set is fine.
 */
export function checkAnswered(
  statuses: Record<string, number>,
  rows: number,
  allowEmpty: boolean | undefined,
): void {
  if (allowEmpty || rows === 0) return;
  if (ANSWERED.some((s) => (statuses[s] ?? 0) > 0)) return;
  const seen = Object.entries(statuses)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  throw new BatchpipeError(
    'BP_NO_ANSWERS',
    `no row got an answer (${seen}); the table was written. Pass --allow-empty to accept that`,
  );
}
