import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most files wait on child processes, HTTP and timers, not the CPU: three at a time on two cores
    // keeps the suite's wall time down (the default, cores - 1, runs one at a time here).
    maxWorkers: 3,
  },
});
