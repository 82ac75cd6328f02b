// Runs a Node entry point (the batchpipe CLI) in this process and reports its peak RSS and CPU time on
// exit, as JSON on stderr's last line, so the CLI is measured exactly as users run it.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [entry, ...args] = process.argv.slice(2);
process.argv = [process.argv[0], resolve(entry), ...args];
process.on('exit', () => {
  const usage = process.resourceUsage();
  const cpuSeconds = (usage.userCPUTime + usage.systemCPUTime) / 1e6;
  process.stderr.write(`\n${JSON.stringify({ maxRssKb: usage.maxRSS, cpuSeconds })}\n`);
});
await import(pathToFileURL(resolve(entry)).href);
