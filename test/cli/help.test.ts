import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI, runCli } from './run-cli.js';

describe('batchpipe --help', () => {
  it('exits quietly when the reader closes the pipe early (`batchpipe run --help | head -1`)', async () => {
    for (const args of [['run', '--help'], ['--help'], ['join', '--help']]) {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d;
      });
      // Like head: read the first chunk, then close the pipe.
      child.stdout.once('data', () => child.stdout.destroy());
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(stderr, args.join(' ')).toBe('');
      expect(code, args.join(' ')).toBe(0);
    }
  });

  it("ends every command's help with the same exit code table", async () => {
    const commands = [
      'run',
      'prepare',
      'validate',
      'submit',
      'status',
      'resume',
      'download',
      'cancel',
      'list',
      'join',
      'eval',
      'cache',
      'serve',
    ];
    for (const command of commands) {
      const help = await runCli([command, '--help']);
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toContain('Exit codes (the same for every command):');
      expect(help.stdout, command).toMatch(/ {2}3 {2}detached \(Ctrl-C, SIGTERM\)/);
    }
  });

  it('refuses one label, or a label twice, as a usage error naming --labels', async () => {
    for (const labels of ['positive', 'positive,negative,positive']) {
      const result = await runCli([
        'prepare',
        'x.csv',
        '--template',
        '{{t}}',
        '--model',
        'qwen-plus',
        '--labels',
        labels,
        '--out',
        'o',
      ]);
      expect(result.code, labels).toBe(2);
      expect(result.stderr, labels).toMatch(/^error BP_INVALID_OPTION: .*--labels/);
    }
  });
});
