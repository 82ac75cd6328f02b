import type { Command } from 'commander';
import { cacheCommand } from './cache.js';
import { cancelCommand } from './cancel.js';
import { downloadCommand } from './download.js';
import { estimateCommand } from './estimate.js';
import { evalCommand } from './eval.js';
import { filesCommand } from './files.js';
import { joinCommand } from './join.js';
import { listCommand } from './list.js';
import { prepareCommand } from './prepare.js';
import { resumeCommand } from './resume.js';
import { runCommand } from './run.js';
import { serveCommand } from './serve.js';
import { statusCommand } from './status.js';
import { submitCommand } from './submit.js';
import { validateCommand } from './validate.js';

/** Every subcommand, in the order `batchpipe --help` lists them. One factory per file in src/cli. */
export const COMMANDS: Array<() => Command> = [
  runCommand,
  prepareCommand,
  estimateCommand,
  validateCommand,
  submitCommand,
  statusCommand,
  resumeCommand,
  downloadCommand,
  cancelCommand,
  listCommand,
  filesCommand,
  joinCommand,
  evalCommand,
  cacheCommand,
  serveCommand,
];
