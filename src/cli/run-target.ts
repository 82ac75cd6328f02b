import type { Command } from 'commander';
import { readManifest } from '../run/manifest.js';
import { hasManifest } from '../run/run-dir.js';
import { type ConnectionFlags, openConnection } from './connection-options.js';
import type { Output } from './output.js';

export interface CommonFlags extends ConnectionFlags {
  json?: boolean;
  quiet?: boolean;
}

export function output(flags: CommonFlags): Output {
  return { json: flags.json === true, quiet: flags.quiet === true };
}

export function withOutputOptions(command: Command): Command {
  return command.option('--json', 'print JSON on stdout').option('--quiet', 'print nothing but errors');
}

/** Opens the connection a run was made with (its manifest names the provider; the key comes from the environment). */
export async function connectionFor(target: string, flags: ConnectionFlags) {
  if (await hasManifest(target)) {
    const manifest = await readManifest(target);
    return openConnection(flags, { provider: manifest.provider.name, baseURL: manifest.provider.base_url });
  }
  return openConnection(flags);
}
