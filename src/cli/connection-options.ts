import { type Command, Option } from 'commander';
import { BatchpipeError } from '../errors.js';
import { TEST_ENGINE_NAME } from '../local/engine/test-engine.js';
import type { LocalService } from '../local/index.js';
import type { Connection } from '../providers/connection.js';
import { API_PATH_NAMES, type ApiPaths, PROVIDER_NAMES, type ProviderName } from '../providers/profile.js';
import { keyValue, list } from './parse-values.js';

/** Where the embedded local service keeps its state between commands. */
export const LOCAL_DATA_DIR = '.batchpipe/local';

export interface ConnectionFlags {
  provider?: ProviderName;
  baseUrl?: string;
  apiKey?: string;
  models?: string[];
  apiPath?: Record<string, string>;
}

/** --provider, --base-url, --api-key: the same in every command that talks to a provider. */
export function addConnectionOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--provider <name>',
        'provider (default: from BATCHPIPE_PROVIDER, or the key that is set, or the embedded local service)',
      ).choices(PROVIDER_NAMES),
    )
    .option('--base-url <url>', 'OpenAI-compatible base URL (or BATCHPIPE_BASE_URL)')
    .option(
      '--api-key <key>',
      'API key (prefer BATCHPIPE_API_KEY, DASHSCOPE_API_KEY or OPENAI_API_KEY: a key on the command line shows in process lists)',
    )
    .option('--models <ids>', 'extra model ids the provider offers, comma-separated', list)
    .option(
      '--api-path <name=path>',
      `where a Files or Batches call goes under --base-url, repeatable: ${API_PATH_NAMES.join(', ')} ({batch_id} stands for the id; gateway defaults: create=/api/v1/batches, files=/v1/files, list=/v1/batches, retrieve=/v1/batches/{batch_id}, cancel=/v1/batches/{batch_id}/cancel)`,
      keyValue,
    );
}

/** `--api-path` pairs, each name checked (a path's own shape is checked with the profile). */
function apiPaths(pairs: Record<string, string>): Partial<ApiPaths> {
  for (const name of Object.keys(pairs)) {
    if (!(API_PATH_NAMES as readonly string[]).includes(name))
      throw new BatchpipeError(
        'BP_USAGE',
        `--api-path: unknown call "${name}"; expected one of ${API_PATH_NAMES.join(', ')}`,
        { option: 'apiPath' },
      );
  }
  return pairs;
}

/** A connection, with the embedded local service started when it is the one to talk to. */
export interface OpenConnection {
  connection: Connection;
  close(): Promise<void>;
}

/**
 * Resolves the connection; for the local provider without a base URL, starts the embedded service on
 * `.batchpipe/local` (its batches persist there and continue whenever a command runs it again).
 */
export async function openConnection(
  flags: ConnectionFlags,
  fallback?: { provider?: string; baseURL?: string | null; apiPaths?: Record<string, string> | undefined },
): Promise<OpenConnection> {
  const { resolveConnection } = await import('../providers/connection.js');
  // The paths a run was made with hold for its provider, not for another one named now.
  const stored =
    flags.provider === undefined || flags.provider === fallback?.provider ? fallback?.apiPaths : undefined;
  const connection = resolveConnection({
    provider: flags.provider ?? (fallback?.provider as ProviderName | undefined),
    baseURL: flags.baseUrl ?? fallback?.baseURL ?? undefined,
    apiKey: flags.apiKey,
    models: flags.models,
    ...((flags.apiPath || stored) && { apiPaths: apiPaths({ ...stored, ...flags.apiPath }) }),
  });
  if (connection.provider !== 'local' || connection.baseURL) return { connection, close: async () => {} };
  const { runningService, startLocalService } = await import('../local/index.js');
  // A `batchpipe serve` (or another command) already runs the service on this data dir: join it.
  const joinRunning = async () => {
    const url = await runningService(LOCAL_DATA_DIR);
    return url ? { connection: { ...connection, baseURL: url }, close: async () => {} } : undefined;
  };
  const running = await joinRunning();
  if (running) return running;
  let service: LocalService;
  try {
    service = await startLocalService({ dataDir: LOCAL_DATA_DIR });
  } catch (error) {
    // Another process took the data dir a moment ago: it announces itself once listening.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const late = await joinRunning();
    if (late) return late;
    throw error;
  }
  return { connection: { ...connection, baseURL: service.url }, close: () => service.close() };
}

/**
 * The engine answering a local connection, as its health route names it (the test engine's
 * `TEST_ENGINE_NAME`: deterministic placeholders, no inference; or the upstream model server's);
 * undefined for a provider.
 */
export async function localEngine(connection: Connection): Promise<string | undefined> {
  if (connection.provider !== 'local' || !connection.baseURL) return undefined;
  try {
    const health = new URL('/_batchpipe/health', connection.baseURL);
    const reply = await fetch(health, { signal: AbortSignal.timeout(5000) });
    const body = (await reply.json()) as { engine?: unknown };
    return typeof body.engine === 'string' ? body.engine : undefined;
  } catch {
    return undefined;
  }
}

/** The line every run on the test engine starts with: its answers are not a model's. */
export const TEST_ENGINE_NOTICE =
  "answers come from batchpipe's local test engine: deterministic placeholders, no inference (set DASHSCOPE_API_KEY or OPENAI_API_KEY for a model)";

/** Says so on stderr (even with --json, whose stdout stays one document) when the test engine answers. */
export async function announceEngine(
  quiet: boolean,
  connection: Connection,
  say: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<string | undefined> {
  const engine = await localEngine(connection);
  if (engine === TEST_ENGINE_NAME && !quiet) say(TEST_ENGINE_NOTICE);
  return engine;
}
