/**
 * Secrets never leave: credentials in a --base-url (user:password@, a key in the query string) and
 * the API key are never written to a manifest, a log, an error or an output file; resume takes the
 * URL again from BATCHPIPE_BASE_URL or --base-url. The local service's upstream engine never passes on
 * or stores a reply that echoes its upstream key. Every file a run and the service wrote, and
 * everything they printed, is searched for every secret used.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { readManifest } from '../../src/run/manifest.js';
import { fileWith, tempDir } from '../helpers.js';
import { clientFor, resultLines, submit, waitFor } from '../local/support.js';
import { CLI, runCli } from './run-cli.js';

const root = tempDir('bp-secrets-');

/** Every file under `dir`, recursively. */
function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...allFiles(path));
    else out.push(path);
  }
  return out;
}

/** Fails naming the file (or stream) and the secret when any of them holds any secret, in any form. */
function expectNoSecrets(where: Array<[string, string]>, secrets: string[]): void {
  const forms = secrets.flatMap((s) => [s, encodeURIComponent(s), Buffer.from(s).toString('base64')]);
  for (const [name, text] of where)
    for (const secret of forms) expect(text.includes(secret), `${name} holds ${secret}`).toBe(false);
}

const filesIn = (dir: string): Array<[string, string]> =>
  allFiles(dir).map((file) => [file, readFileSync(file, 'latin1')]);

describe('credentials in a base URL', () => {
  const user = 'alice-user-7f3k';
  const password = 'pw-secret-Q8z2x';
  const queryKey = 'qk-secret-M4n7v';
  const apiKey = 'sk-run-secret-K2j9w';
  const secrets = [user, password, queryKey, apiKey, Buffer.from(`${user}:${password}`).toString('base64')];
  let service: LocalService;
  const logLines: string[] = [];

  beforeAll(async () => {
    service = await startLocalService({
      dataDir: join(root, 'service'),
      log: (line) => logLines.push(line),
    });
  });
  afterAll(() => service.close());

  const secretURL = () => {
    const url = new URL(service.url);
    url.username = user;
    url.password = password;
    url.searchParams.set('api-key', queryKey);
    return url.toString();
  };
  const env = { BATCHPIPE_API_KEY: apiKey, BATCHPIPE_BASE_URL: '' };

  it('a run with user:password@ and ?api-key= in its URL works, and nothing it or the service wrote or printed holds them', async () => {
    // What reaches the service: the credentials apart from the URL (Basic authentication, the query).
    const [probe] = service.faults.arm({ route: 'files.create', kind: 'slow', delayMs: 0 });
    const input = fileWith(root, 'table.csv', 'id,text\na,first\nb,second\nc,third\n');
    const runs = join(root, 'runs');
    const out = join(root, 'out', 'table.csv');
    const args = [
      'run',
      input,
      '--template',
      '{{text}}',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--provider',
      'custom',
      '--base-url',
      secretURL(),
      '--runs-dir',
      runs,
      '--poll-interval',
      '0.1',
      '--out',
      out,
    ];
    const ran = await runCli(args, { env });
    expect(ran.code, ran.stderr).toBe(0);
    expect(service.faults.list().find((f) => f.id === probe!.id)!.seen).toBe(1);
    service.faults.disarm();
    const runDir = join(runs, readdirSync(runs).find((d) => d.startsWith('run-'))!);
    const manifest = await readManifest(runDir);
    expect(manifest.provider.base_url).toBe(
      `http://***:***@${new URL(service.url).host}${new URL(service.url).pathname}?api-key=***`,
    );

    // status without the URL: a usage error naming the variable; with it (or --base-url) it works.
    const bare = await runCli(['status', runDir], { env });
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('error BP_USAGE');
    expect(bare.stderr).toContain('BATCHPIPE_BASE_URL');
    const fromEnv = await runCli(['status', runDir, '--json'], {
      env: { ...env, BATCHPIPE_BASE_URL: secretURL() },
    });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(JSON.parse(fromEnv.stdout).counts.ok).toBe(3);
    const fromFlag = await runCli(
      ['download', runDir, '--base-url', secretURL(), '--out', join(root, 'dl.jsonl')],
      {
        env,
      },
    );
    expect(fromFlag.code, fromFlag.stderr).toBe(0);

    // An error whose text echoes the credentials: the run stops with it, redacted.
    service.faults.arm({
      route: 'files.create',
      kind: 'error',
      status: 400,
      message: `refused: ${secretURL()} with ${password}, ${queryKey} and ${apiKey}`,
    });
    const refused = await runCli(
      [...args.slice(0, 1), fileWith(root, 'other.csv', 'id,text\nx,other\n'), ...args.slice(2)],
      { env },
    );
    service.faults.disarm();
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('error BP_PROVIDER_HTTP');
    expect(refused.stderr).toContain('refused: http://***:***@');

    await service.close();
    expectNoSecrets(
      [
        ...filesIn(runs),
        ...filesIn(join(root, 'out')),
        ...filesIn(service.dataDir),
        ['dl.jsonl', readFileSync(join(root, 'dl.jsonl'), 'latin1')],
        ['service log', logLines.join('\n')],
        ...[ran, bare, fromEnv, fromFlag, refused].flatMap(
          (r, i): Array<[string, string]> => [
            [`stdout ${i}`, r.stdout],
            [`stderr ${i}`, r.stderr],
          ],
        ),
      ],
      secrets,
    );
  }, 60_000);
});

describe('the upstream engine and its key', () => {
  const upstreamKey = 'sk-upstream-echo-X7p4r';
  const upstreamPassword = 'up-pass-secret-T5y8u';
  const upstreamToken = 'up-token-secret-L3k6q';
  // The Basic credentials as they travel, too.
  const basic = Buffer.from(`bob:${upstreamPassword}`).toString('base64');
  const secrets = [upstreamKey, upstreamPassword, upstreamToken, basic];
  let echo: Server;
  const received: Array<{ authorization: string | undefined; url: string | undefined }> = [];

  beforeAll(async () => {
    // An upstream that echoes every credential it was sent: refusals quote them, answers repeat them.
    echo = createServer((req: IncomingMessage, res) => {
      received.push({ authorization: req.headers.authorization, url: req.url });
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk;
      });
      req.on('end', () => {
        const said = `${req.headers.authorization ?? ''} ${req.url ?? ''} ${upstreamKey} ${upstreamPassword}`;
        const refuse = body.includes('refuse me') || body.includes('busy me');
        res.writeHead(body.includes('busy me') ? 503 : refuse ? 401 : 200, {
          'content-type': 'application/json',
        });
        res.end(
          JSON.stringify(
            refuse
              ? { error: { message: `Incorrect API key provided: ${said}`, code: 'invalid_api_key' } }
              : {
                  id: 'chatcmpl-echo',
                  object: 'chat.completion',
                  model: 'echo',
                  choices: [
                    {
                      index: 0,
                      message: { role: 'assistant', content: `you sent ${said}` },
                      finish_reason: 'stop',
                    },
                  ],
                  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
                },
          ),
        );
      });
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => echo.close(() => resolve())));

  it('scrubs the key and the URL credentials from every reply before it reaches a client or a file', async () => {
    const port = (echo.address() as AddressInfo).port;
    const logLines: string[] = [];
    const service = await startLocalService({
      dataDir: join(root, 'front'),
      timeScale: 3600,
      engine: 'upstream',
      upstream: {
        url: `http://bob:${upstreamPassword}@127.0.0.1:${port}/v1?token=${upstreamToken}`,
        apiKey: upstreamKey,
        retries: 0,
      },
      log: (line) => logLines.push(line),
    });
    const texts: Array<[string, string]> = [];
    try {
      const client = clientFor(service);
      const lines = [
        { prompt: 'answer me', id: 'ok-1' },
        { prompt: 'refuse me', id: 'no-1' },
      ].map(({ prompt, id }) => ({
        custom_id: id,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'echo', messages: [{ role: 'user', content: prompt }] },
      }));
      const batch = await waitFor(client, (await submit(client, root, lines)).id);
      expect(batch.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
      const output = await resultLines(client, batch.output_file_id);
      const errors = await resultLines(client, batch.error_file_id);
      texts.push(['output file', JSON.stringify(output)], ['error file', JSON.stringify(errors)]);
      expect(JSON.stringify(output)).toContain('you sent Basic *** /v1/chat/completions?*** *** ***');
      expect(JSON.stringify(errors)).toContain(
        'Incorrect API key provided: Basic *** /v1/chat/completions?*** *** ***',
      );
      // The synchronous route too.
      const direct = await client.chat.completions
        .create({ model: 'echo', messages: [{ role: 'user', content: 'refuse me' }] })
        .catch((e: unknown) => e);
      texts.push(['sync refusal', JSON.stringify(direct) + String((direct as Error).message)]);
      const answered = await client.chat.completions.create({
        model: 'echo',
        messages: [{ role: 'user', content: 'answer me' }],
      });
      texts.push(['sync answer', JSON.stringify(answered)]);
      // The credentials reached the upstream, apart from the URL.
      expect(received[0]!.authorization).toBe(
        `Basic ${Buffer.from(`bob:${upstreamPassword}`).toString('base64')}`,
      );
      expect(received[0]!.url).toBe(`/v1/chat/completions?token=${upstreamToken}`);
    } finally {
      await service.close();
    }
    expectNoSecrets(
      [...texts, ...filesIn(join(root, 'front')), ['service log', logLines.join('\n')]],
      secrets,
    );
  }, 60_000);

  it('batchpipe serve with the upstream URL and key: its stdout, stderr (--log) and data dir hold none of them', async () => {
    const port = (echo.address() as AddressInfo).port;
    const dataDir = join(root, 'served');
    const child = spawn(
      process.execPath,
      [
        CLI,
        'serve',
        '--port',
        '0',
        '--data-dir',
        dataDir,
        '--engine',
        'upstream',
        '--upstream-url',
        `http://bob:${upstreamPassword}@127.0.0.1:${port}/v1?token=${upstreamToken}`,
        '--upstream-retries',
        '1',
        '--upstream-backoff-ms',
        '5',
        '--log',
      ],
      { env: { ...process.env, BATCHPIPE_UPSTREAM_API_KEY: upstreamKey } },
    );
    let output = '';
    child.stderr.on('data', (d: Buffer) => {
      output += d;
    });
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const url = await new Promise<string>((resolve) => {
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d;
        output += d;
        if (stdout.includes('\n')) resolve(stdout.split('\n')[0]!);
      });
    });
    const client = clientFor({ url });
    const lines = ['answer me', 'refuse me', 'busy me'].map((prompt, i) => ({
      custom_id: `r${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'echo', messages: [{ role: 'user', content: prompt }] },
    }));
    const batch = await waitFor(client, (await submit(client, root, lines)).id);
    expect(batch.request_counts).toEqual({ total: 3, completed: 1, failed: 2 });
    const errors = await resultLines(client, batch.error_file_id);
    expect(errors.map((l) => l.response?.status_code).sort()).toEqual([401, 503]);
    child.kill('SIGTERM');
    expect(await closed).toBe(0);
    expect(output).toMatch(/retry 1 of 1/);
    expectNoSecrets([['serve output', output], ...filesIn(dataDir)], secrets);
  }, 60_000);
});
