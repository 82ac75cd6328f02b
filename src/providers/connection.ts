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

/** What stands in for a secret wherever it would be written. */
const REDACTED = '***';

/** A base URL taken apart: where to call, and the credentials it carried, to send apart from it. */
export interface BaseURLParts {
  /** The URL without user info and query string. */
  url: string;
  /** The query string's parameters, sent with every call. */
  query: Record<string, string>;
  /** `user:password` from the URL, sent as HTTP Basic authentication; undefined when it has none. */
  basic: string | undefined;
}

/**
 * Takes a base URL apart (`https://user:password@host/v1?key=...`): a URL with credentials in it can
 * be neither fetched (Node's fetch refuses user info) nor extended with paths (the query would end up
 * in the middle), and must never be written anywhere as it is.
 */
export function splitBaseURL(baseURL: string): BaseURLParts {
  let parsed: URL;
  try {
    parsed = new URL(baseURL);
  } catch {
    return { url: baseURL, query: {}, basic: undefined };
  }
  const basic =
    parsed.username || parsed.password
      ? `${decoded(parsed.username)}:${decoded(parsed.password)}`
      : undefined;
  const query = Object.fromEntries(parsed.searchParams);
  parsed.username = '';
  parsed.password = '';
  parsed.search = '';
  parsed.hash = '';
  return { url: parsed.toString().replace(/\/+$/, ''), query, basic };
}

/** A percent-encoded URL part, decoded; as it is when it is not valid percent-encoding. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/**
 * The URL as it may be written (manifests, messages): user, password and every query value replaced by
 * `***` (any of them may be a key; which one is, the URL does not say).
 */
export function redactURL(url: string): string;
export function redactURL(url: string | null): string | null;
export function redactURL(url: string | null): string | null {
  if (url === null) return null;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  // A URL without credentials stays exactly as given (the run id hashes it: a normalized form would
  // rename the runs of every URL that normalizes differently).
  if (!parsed.username && !parsed.password && !parsed.search) return url;
  if (parsed.username) parsed.username = REDACTED;
  if (parsed.password) parsed.password = REDACTED;
  const query = [...parsed.searchParams.keys()];
  if (query.length > 0)
    parsed.search = query.map((key) => `${encodeURIComponent(key)}=${REDACTED}`).join('&');
  return parsed.toString().replace(/%2A%2A%2A/g, REDACTED);
}

/** True when a URL carries credentials (user info or a query string) that `redactURL` hides. */
export function hasURLSecrets(url: string): boolean {
  const { query, basic } = splitBaseURL(url);
  return basic !== undefined || Object.keys(query).length > 0;
}

/** The secrets of a connection, as they could appear in a text: the key, and the base URL's credentials. */
function secretsOf(connection: Pick<Connection, 'apiKey'> & { baseURL?: string | undefined }): string[] {
  const values: string[] = [];
  if (connection.apiKey) values.push(connection.apiKey);
  if (connection.baseURL && URL.canParse(connection.baseURL)) {
    const parsed = new URL(connection.baseURL);
    const { query, basic } = splitBaseURL(connection.baseURL);
    values.push(...Object.values(query), parsed.username, parsed.password, parsed.search.slice(1));
    // Basic authentication as it travels, which a server may echo.
    if (basic) {
      const colon = basic.indexOf(':');
      values.push(basic.slice(0, colon), basic.slice(colon + 1), Buffer.from(basic).toString('base64'));
    }
  }
  const secrets = new Set<string>();
  for (const value of values) {
    if (!value) continue;
    // As written, as a URL carries it, and as a JSON string carries it.
    for (const form of [value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)])
      secrets.add(form);
  }
  // Longest first, so a secret that contains another is replaced whole; short ones would hit anything.
  return [...secrets].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
}

/**
 * A function that replaces the key and the base URL's credentials wherever they occur in a text (error
 * messages and bodies from servers and HTTP libraries may echo them); the base URL itself becomes its
 * redacted form. The secrets are worked out once.
 */
export function redactor(
  connection: Pick<Connection, 'apiKey'> & { baseURL?: string | undefined },
): (text: string) => string {
  const secrets = secretsOf(connection);
  const url = connection.baseURL && hasURLSecrets(connection.baseURL) ? connection.baseURL : undefined;
  const shown = url && redactURL(url);
  if (secrets.length === 0 && !url) return (text) => text;
  return (text) => {
    let out = url ? text.split(url).join(shown!) : text;
    for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  };
}

/** `redactor(connection)(text)`, for one text. */
export function redact(
  text: string,
  connection: Pick<Connection, 'apiKey'> & { baseURL?: string | undefined },
): string {
  return redactor(connection)(text);
}
