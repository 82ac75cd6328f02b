import { Command } from 'commander';
import { addConnectionOptions, announceEngine } from './connection-options.js';
import { notice } from './output.js';
import {
  addRunOptions,
  detachOnInterrupt,
  progressOf,
  type RunFlags,
  runOptionsFrom,
} from './run-options.js';
import { type CommonFlags, connectionFor, output, withOutputOptions } from './run-target.js';
import { finishCommand } from './submit.js';

export function resumeCommand(): Command {
  const command = new Command('resume')
    .description('carry on a run after a crash, Ctrl-C or --no-wait: nothing is submitted twice')
    .argument('<run-dir>', 'the run directory');
  addRunOptions(command);
  addConnectionOptions(command);
  return withOutputOptions(command)
    .option('--no-wait', 'submit what is left and return')
    .action(async (runDir: string, flags: RunFlags & CommonFlags & { wait: boolean }) => {
      const { openRun } = await import('../run/start-run.js');
      const out = output(flags);
      progressOf(flags, out);
      const interrupt = detachOnInterrupt(out);
      const { connection, close } = await connectionFor(runDir, flags);
      await announceEngine(out.quiet, connection, notice(out));
      try {
        const run = await openRun(runDir, connection, runOptionsFrom(flags, out, interrupt.signal));
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
