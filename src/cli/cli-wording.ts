import type { Command } from 'commander';
import { isBatchpipeError } from '../errors.js';

/**
 * Says a library message in the command line's words: the library names options as the API spells
 * them ("the idColumn option", `toRequests: option "endpoint"`), a person at a shell typed
 * `--id-column` and `--endpoint`. Only names the command has as options are changed.
 */
export function cliWording(command: Command, text: string): string {
  const flags = flagsOf(command);
  return (
    text
      // parseOptions: `toRequests: option "endpoint": ...` (a nested path names its top option)
      .replace(/(?:\b\w+: )?\boption "(\w+)[\w.]*"/g, (found, name: string) => flags.get(name) ?? found)
      // "the idColumn option", "the template and mapper options", "the labels, schema and x options"
      .replace(/\bthe ((?:\w+(?:, | and | or ))*\w+) options?\b/g, (found, names: string) => {
        const parts = names.split(/(, | and | or )/);
        const words = parts.filter((_, i) => i % 2 === 0);
        if (!words.every((w) => flags.has(w))) return found;
        return parts.map((part, i) => (i % 2 === 0 ? flags.get(part)! : part)).join('');
      })
  );
}

/** Runs a command's work, rewording the errors it throws for the command line. */
export async function inCliWords<T>(command: Command, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isBatchpipeError(error)) error.message = cliWording(command, error.message);
    throw error;
  }
}

const cache = new WeakMap<Command, Map<string, string>>();

function flagsOf(command: Command): Map<string, string> {
  let flags = cache.get(command);
  if (!flags) {
    flags = new Map();
    for (const option of command.options) if (option.long) flags.set(option.attributeName(), option.long);
    cache.set(command, flags);
  }
  return flags;
}
