import type { Command } from 'commander';
import { joinCommand } from './join.js';
import { prepareCommand } from './prepare.js';
import { serveCommand } from './serve.js';
import { validateCommand } from './validate.js';

/** Every subcommand, in the order `batchpipe --help` lists them. One factory per file in src/cli. */
export const COMMANDS: Array<() => Command> = [prepareCommand, validateCommand, joinCommand, serveCommand];
