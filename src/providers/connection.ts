import { BatchpipeError } from '../errors.js';
import { PROVIDER_NAMES, type ProviderName, type ProviderProfile } from './profile.js';
import { type ProfileOptions, resolveProfile } from './resolve-profile.js';

/** Where requests go and with which key. The key never leaves this object: not in logs, manifests or errors. */
export interface Connection {
  provider: ProviderName;
  profile: ProviderProfile;
  /** The base URL, or undefined for the embedded local service (started on demand). */
  baseURL: string | undefined;
  /** The API key, when one is needed. */
  apiKey: string | undefined;
  /** Where the key came from, for messages: an environment variable's name, or "--api-key". */
  keySource: string | undefined;
}

export interface ConnectionOptions extends Omit<ProfileOptions, 'provider' | 'baseURL'> {
  provider?: ProviderName | undefined;
  baseURL?: string | undefined;
  apiKey?: string | undefined;
}

/**
 * Resolves the provider, base URL and key from options, then the environment: `BATCHPIPE_PROVIDER`,
 * `BATCHPIPE_BASE_URL`, `BATCHPIPE_API_KEY`, then the providers' own `DASHSCOPE_API_KEY` and
 * `OPENAI_API_KEY`. With none of them set, the embedded local service: no key, no network.
 */
export function resolveConnection(
  options: ConnectionOptions = {},
  environment: NodeJS.ProcessEnv = process.env,
): Connection {
  // An empty variable is an unset one (`FOO= batchpipe ...`).
  const env = Object.fromEntries(
    Object.entries(environment).filter(([, value]) => value !== undefined && value !== ''),
  );
  const baseURL = options.baseURL ?? env.BATCHPIPE_BASE_URL;
  const provider = options.provider ?? defaultProvider(env, baseURL);
  const { provider: _p, baseURL: _b, apiKey: _k, ...overrides } = options;
  const profile = resolveProfile({ ...overrides, provider });
  let apiKey = options.apiKey;
  let keySource: string | undefined = apiKey ? '--api-key' : undefined;
  for (const name of ['BATCHPIPE_API_KEY', profile.apiKeyEnv]) {
    if (apiKey || !name) continue;
    if (env[name]) {
      apiKey = env[name];
      keySource = name;
    }
  }
  const url = baseURL ?? profile.baseURL ?? undefined;
  if (provider !== 'local' && !url) {
    throw new BatchpipeError(
      'BP_USAGE',
      `provider ${provider} needs a base URL: pass --base-url or set BATCHPIPE_BASE_URL`,
      { option: 'baseURL' },
    );
  }
  if (provider !== 'local' && !apiKey) {
    const where = profile.apiKeyEnv
      ? `set ${profile.apiKeyEnv} (or BATCHPIPE_API_KEY)`
      : 'set BATCHPIPE_API_KEY';
    throw new BatchpipeError(
      'BP_USAGE',
      `provider ${provider} needs an API key: ${where}, or pass --api-key`,
      { option: 'apiKey' },
    );
  }
  return { provider, profile, baseURL: url, apiKey, keySource };
}

/**
 * The provider when none is named: `BATCHPIPE_PROVIDER`, else the one whose key is set, else `custom`
 * when a base URL is given, else the embedded local service.
 */
export function defaultProvider(
  env: NodeJS.ProcessEnv = process.env,
  baseURL = env.BATCHPIPE_BASE_URL || undefined,
): ProviderName {
  const named = env.BATCHPIPE_PROVIDER || undefined;
  if (named !== undefined) {
    if (!(PROVIDER_NAMES as readonly string[]).includes(named)) {
      throw new BatchpipeError(
        'BP_INVALID_OPTION',
        `BATCHPIPE_PROVIDER is "${named}"; expected one of ${PROVIDER_NAMES.join(', ')}`,
        { option: 'provider' },
      );
    }
    return named as ProviderName;
  }
  if (env.DASHSCOPE_API_KEY) return 'dashscope';
  if (env.OPENAI_API_KEY) return 'openai';
  return baseURL ? 'custom' : 'local';
}

/** Replaces every occurrence of the key in a text (error messages from servers may echo it). */
export function redact(text: string, connection: Pick<Connection, 'apiKey'>): string {
  const key = connection.apiKey;
  return key && key.length >= 4 ? text.split(key).join('***') : text;
}
