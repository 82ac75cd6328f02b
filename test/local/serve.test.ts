/**
 * `batchpipe serve` as users run it (the built CLI, `npm test` builds first): it prints its base URL,
 * serves the SDK, takes its key from the environment without ever printing it, stops cleanly on
 * SIGTERM, and a SIGKILL mid-batch loses nothing: started again on its data dir, it finishes the batch
 * with every request answered exactly once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { startLocalService } from '../../src/local/index.js';
import { CLI, runCli } from '../cli/run-cli.js';
import { tempDir } from '../helpers.js';
import { chatLines, clientFor, raw, resultIds, submit, waitFor } from './support.js';

const root = tempDir('bp-local-serve-');

interface Served {
  child: ChildProcess;
  url: string;
  output: () => string;
  exit: Promise<number | null>;
}

/** Spawns `batchpipe serve --port 0 ...` and waits for the URL it prints on stdout. */
async function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], {
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d;
  });
  // 'close', not 'exit': the child's last output may still be in its pipes when it exits.
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      if (stdout.includes('\n')) resolve(stdout.split('\n')[0]!);
    });
    void exit.then((code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  return { child, url, exit, output: () => stdout + stderr };
}

describe('batchpipe serve', () => {
  it('prints its base URL, serves the SDK, and stops cleanly on SIGTERM', async () => {
    const dataDir = join(root, 'plain');
    const served = await serve(['--data-dir', dataDir, '--time-scale', '60', '--seed', '3']);
    expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const client = clientFor({ url: served.url });
    const batch = await waitFor(client, (await submit(client, root, chatLines(20))).id);
    expect(batch.status).toBe('completed');
    expect(existsSync(join(dataDir, 'service.lock'))).toBe(true);
    served.child.kill('SIGTERM');
    expect(await served.exit).toBe(0);
    expect(served.output()).toContain('stopped');
    expect(existsSync(join(dataDir, 'service.lock'))).toBe(false);
  });

  it('takes the API key from BATCHPIPE_LOCAL_API_KEY and never prints it', async () => {
    const key = 'sk-serve-secret-5b8e1f';
    const served = await serve(['--data-dir', join(root, 'keyed'), '--log'], {
      BATCHPIPE_LOCAL_API_KEY: key,
    });
    try {
      const anonymous = await raw({ url: served.url }, '/v1/files');
      expect(anonymous.status).toBe(401);
      const client = clientFor({ url: served.url }, key);
      expect((await client.files.list()).data).toEqual([]);
      await submit(client, root, chatLines(3));
    } finally {
      served.child.kill('SIGINT');
      expect(await served.exit).toBe(0);
    }
    expect(served.output()).toContain('an API key is required');
    expect(served.output()).not.toContain(key);
  });

  it('finishes a batch after a SIGKILL mid-run: nothing lost, nothing answered twice', async () => {
    const dataDir = join(root, 'crash');
    const args = ['--data-dir', dataDir, '--latency-ms', '4', '--concurrency', '4'];
    const first = await serve(args);
    let client = clientFor({ url: first.url });
    const created = await submit(client, root, chatLines(800), { metadata: { ds_name: 'crash-me' } });
    const midway = await waitFor(client, created.id, (b) => (b.request_counts?.completed ?? 0) >= 150);
    first.child.kill('SIGKILL');
    expect(midway.request_counts!.completed).toBeLessThan(800);
    await first.exit;

    const second = await serve(args);
    try {
      client = clientFor({ url: second.url });
      const batch = await waitFor(client, created.id);
      expect(batch.status).toBe('completed');
      expect(batch.request_counts).toEqual({ total: 800, completed: 800, failed: 0 });
      const ids = await resultIds(client, batch);
      expect(ids.size).toBe(800);
      expect([...ids.values()].every((n) => n === 1)).toBe(true);
      const records = await raw({ url: second.url }, '/_batchpipe/records');
      expect(records.body.batchesByDsName).toEqual({ 'crash-me': 1 });
    } finally {
      second.child.kill('SIGTERM');
      await second.exit;
    }
  });

  it('arms faults from --fault and --fail-rate, and crashes and restarts from /_batchpipe/restart', async () => {
    const served = await serve([
      '--data-dir',
      join(root, 'faulty'),
      '--fault',
      'route=files.create,kind=lose,times=1',
      '--fault',
      'route=batches.list,kind=error,status=429,retryAfterMs=20,times=1',
      '--fail-rate',
      '1',
      '--fail-codes',
      'server_error:503',
      '--list-rate',
      '1',
      '--batch-chat',
      '--batch-chat-max-per-second',
      '1',
    ]);
    try {
      const client = clientFor({ url: served.url });
      await expect(submit(client, root, chatLines(3))).rejects.toThrow(/Connection error/);
      const listed = await raw({ url: served.url }, '/v1/batches');
      expect(listed.status).toBe(429);
      expect(listed.headers.get('retry-after-ms')).toBe('20');
      // The fault came before the rate: the next list is the first counted, the one after is over it.
      expect((await raw({ url: served.url }, '/v1/batches')).status).toBe(200);
      const throttled = await raw({ url: served.url }, '/v1/batches');
      expect(throttled.status).toBe(429);
      expect(throttled.body.error).toMatchObject({ code: 'rate_limit_exceeded' });
      const batch = await waitFor(client, (await submit(client, root, chatLines(3))).id);
      expect(batch.request_counts).toEqual({ total: 3, completed: 0, failed: 3 });
      // Batch Chat admits the first call (which fails at the fail rate) and caps the second.
      const chat = () =>
        client.chat.completions.create({ model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] });
      await expect(chat()).rejects.toMatchObject({ status: 503, code: 'server_error' });
      await expect(chat()).rejects.toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
      const records = await raw({ url: served.url }, '/_batchpipe/records');
      expect((records.body.calls as unknown[]).length).toBe(3);
      const restart = await raw({ url: served.url }, '/_batchpipe/restart', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ crash: true, downMs: 50 }),
      });
      expect(restart.status).toBe(200);
      // Down for 50 ms, then up again: waited for (a loaded machine restarts it later), not timed.
      let after: Awaited<ReturnType<typeof client.batches.retrieve>> | undefined;
      for (let waited = 0; after === undefined && waited < 10_000; waited += 100) {
        await sleep(100);
        after = await client.batches.retrieve(batch.id).catch(() => undefined);
      }
      expect(after?.status).toBe('completed');
    } finally {
      served.child.kill('SIGTERM');
      expect(await served.exit).toBe(0);
    }
  });

  it('forwards to --upstream-url with the key from BATCHPIPE_UPSTREAM_API_KEY, never printed', async () => {
    const key = 'sk-upstream-serve-41c7';
    const upstream = await startLocalService({ apiKey: key });
    const served = await serve(
      ['--data-dir', join(root, 'upstream'), '--engine', 'upstream', '--upstream-url', upstream.url, '--log'],
      { BATCHPIPE_UPSTREAM_API_KEY: key },
    );
    try {
      const client = clientFor({ url: served.url });
      const batch = await waitFor(client, (await submit(client, root, chatLines(6))).id);
      expect(batch.request_counts).toEqual({ total: 6, completed: 6, failed: 0 });
      expect((await raw({ url: served.url }, '/_batchpipe/health')).body.engine).toBe('upstream');
    } finally {
      served.child.kill('SIGTERM');
      expect(await served.exit).toBe(0);
      await upstream.close();
    }
    expect(served.output()).toContain('upstream engine');
    expect(served.output()).not.toContain(key);
    const missing = await runCli(['serve', '--engine', 'upstream', '--data-dir', join(root, 'no-url')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--upstream-url');
  });

  it('warns on stderr when it listens beyond this machine without an API key (it said nothing)', async () => {
    const open = await serve(['--data-dir', join(root, 'wide'), '--host', '0.0.0.0']);
    open.child.kill('SIGTERM');
    await open.exit;
    expect(open.output()).toMatch(/warning: listening on 0\.0\.0\.0 without an API key/);
    const keyed = await serve(['--data-dir', join(root, 'wide-keyed'), '--host', '0.0.0.0'], {
      BATCHPIPE_LOCAL_API_KEY: 'sk-wide-7d2e',
    });
    const local = await serve(['--data-dir', join(root, 'narrow')]);
    for (const served of [keyed, local]) {
      served.child.kill('SIGTERM');
      await served.exit;
      expect(served.output()).not.toContain('warning');
    }
  });

  it("takes --models any, and otherwise offers DashScope's models only", async () => {
    const strict = await serve(['--data-dir', join(root, 'models-default')]);
    const any = await serve(['--data-dir', join(root, 'models-any'), '--models', 'any']);
    try {
      const ask = (url: string) =>
        clientFor({ url }).chat.completions.create({
          model: 'my-own-model',
          messages: [{ role: 'user', content: 'hi' }],
        });
      await expect(ask(strict.url)).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
      expect((await ask(any.url)).choices).toHaveLength(1);
    } finally {
      for (const served of [strict, any]) {
        served.child.kill('SIGTERM');
        await served.exit;
      }
    }
  });

  it('exits 2 on a bad flag and 1 with BP_SERVICE_START when the port is taken', async () => {
    const bad = await runCli(['serve', '--profile', 'gemini']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('gemini');
    const holder = await serve(['--data-dir', join(root, 'holder')]);
    try {
      const port = new URL(holder.url).port;
      const taken = await runCli(['serve', '--port', port, '--data-dir', join(root, 'other')]);
      expect(taken.code).toBe(1);
      expect(taken.stderr).toContain('BP_SERVICE_START');
    } finally {
      holder.child.kill('SIGTERM');
      await holder.exit;
    }
  });

  it('documents its flags in --help', async () => {
    const help = await runCli(['serve', '--help']);
    expect(help.code).toBe(0);
    for (const flag of [
      '--host',
      '--port',
      '--data-dir',
      '--api-key',
      '--profile',
      '--engine',
      '--latency-ms',
      '--time-scale',
      '--seed',
      '--fault',
      '--fail-rate',
      '--fail-codes',
      '--file-fail-rate',
      '--quotas',
      '--list-rate',
      '--max-storage',
      '--max-dry-runs',
      '--batch-chat',
      '--upstream-url',
      '--upstream-api-key',
    ])
      expect(help.stdout).toContain(flag);
  });
});
