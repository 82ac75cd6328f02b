import type { Command } from 'commander';
import { BatchpipeError } from '../errors.js';
import { hasURLSecrets, redactURL } from '../providers/connection.js';
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

/**
 * Opens the connection a run was made with (its manifest names the provider; the key comes from the
 * environment). A base URL stored redacted (it carried credentials) is taken again from `--base-url`
 * or from `BATCHPIPE_BASE_URL` when that is the same URL; without either, a BP_USAGE error says so.
 */
export async function connectionFor(target: string, flags: ConnectionFlags) {
  if (await hasManifest(target)) {
    const manifest = await readManifest(target);
    return openConnection(flags, {
      provider: manifest.provider.name,
      baseURL: flags.baseUrl ? undefined : storedBaseURL(manifest.provider.base_url),
      apiPaths: manifest.provider.api_paths,
    });
  }
  return openConnection(flags);
}

/** The base URL a manifest names, with its credentials back from the environment when it had any. */
function storedBaseURL(stored: string | null): string | null {
  if (stored === null || !hasURLSecrets(stored)) return stored;
  const fromEnv = process.env.BATCHPIPE_BASE_URL;
  if (fromEnv && redactURL(fromEnv) === stored) return fromEnv;
  throw new BatchpipeError(
    'BP_USAGE',
    `this run's base URL carried credentials, which are never stored (the run keeps ${stored}): set BATCHPIPE_BASE_URL to the URL with them${fromEnv ? ' (it is set to another URL)' : ''}, or pass --base-url again`,
    { option: 'baseURL' },
  );
}
