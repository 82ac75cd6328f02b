/**
 * A wrong address fails fast: connection refused, a host name that does not resolve and a failed TLS
 * handshake stop the first call within seconds (two tries at the address), with a message naming the
 * URL (without its credentials) and the likely cause, not after minutes of retries and lookups.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { fileWith, tempDir } from '../helpers.js';
import { runCli } from './run-cli.js';

const dir = tempDir('bp-unreachable-');
const table = fileWith(dir, 't.csv', 'id,t\n1,a\n2,b\n');
let service: LocalService;
let closedPort: number;

beforeAll(async () => {
  service = await startLocalService();
  closedPort = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
});
afterAll(() => service.close());

async function runAgainst(baseURL: string, name: string) {
  const started = Date.now();
  const result = await runCli(
    [
      'run',
      table,
      '--template',
      '{{t}}',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--provider',
      'custom',
      '--base-url',
      baseURL,
      '--out',
      join(dir, `${name}.csv`),
      '--runs-dir',
      join(dir, `runs-${name}`),
    ],
    { env: { BATCHPIPE_API_KEY: 'sk-unreachable-test-key' } },
  );
  return { ...result, seconds: (Date.now() - started) / 1000 };
}

describe('a base URL that never answers', () => {
  it('connection refused: exit 1 within 10 s, naming the URL without its credentials, and the cause', async () => {
    const result = await runAgainst(
      `http://user:hunter22@127.0.0.1:${closedPort}/v1?key=sk-in-query`,
      'refused',
    );
    expect(result.code).toBe(1);
    expect(result.seconds).toBeLessThan(10);
    expect(result.stderr).toContain(
      `error BP_PROVIDER_UNREACHABLE: cannot reach http://127.0.0.1:${closedPort}/v1: connection refused: nothing listens at 127.0.0.1:${closedPort}`,
    );
    expect(result.stderr).not.toMatch(/hunter22|sk-in-query|sk-unreachable-test-key|\n\s+at /);
  });

  it('a host name that does not resolve', async () => {
    const result = await runAgainst('http://no-such-host.invalid/v1', 'dns');
    expect(result.code).toBe(1);
    expect(result.seconds).toBeLessThan(10);
    expect(result.stderr).toMatch(
      /error BP_PROVIDER_UNREACHABLE: cannot reach http:\/\/no-such-host\.invalid\/v1: the host name no-such-host\.invalid does not resolve \((ENOTFOUND|EAI_AGAIN|EAI_NONAME|EAI_FAIL)\)/,
    );
  });

  it('a TLS handshake that fails (https:// to a plain-HTTP port)', async () => {
    const result = await runAgainst(service.url.replace('http://', 'https://'), 'tls');
    expect(result.code).toBe(1);
    expect(result.seconds).toBeLessThan(10);
    expect(result.stderr).toMatch(
      /error BP_PROVIDER_UNREACHABLE: cannot reach https:\/\/127\.0\.0\.1:\d+\/v1: the TLS handshake failed \(/,
    );
  });
});
