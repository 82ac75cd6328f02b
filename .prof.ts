import { joinTable } from './src/jobs/join-table.js';

const t = performance.now();
await joinTable({
  source: 'bench/data/bench-reviews-20000.parquet',
  results: ['bench/data/bench-results-20000.jsonl', 'bench/data/bench-errors-20000.jsonl'],
  out: '/tmp/fmt/j.parquet',
});
console.log('parquet join', performance.now() - t);
const t2 = performance.now();
await joinTable({
  source: 'bench/data/bench-reviews-20000.parquet',
  results: ['bench/data/bench-results-20000.jsonl', 'bench/data/bench-errors-20000.jsonl'],
  out: '/tmp/fmt/j.parquet',
});
console.log('parquet join again', performance.now() - t2);
const t3 = performance.now();
await joinTable({
  source: 'bench/data/bench-reviews-20000.csv',
  results: ['bench/data/bench-results-20000.jsonl', 'bench/data/bench-errors-20000.jsonl'],
  out: '/tmp/fmt/j.csv',
});
console.log('csv join', performance.now() - t3);
