// DuckDB writing the same request lines from the same CSV with COPY ... (FORMAT json). Its parallel CSV
// reader refuses files with quoted newlines ("does not support a full read on this file"), so it reads
// this one on one thread (parallel = false); the JSON writing is still its own.
// Prints rows and peak RSS as JSON.
import { DuckDBInstance } from '@duckdb/node-api';

const [src, dst, model, system, prefix] = process.argv.slice(2);
const quote = (s) => `'${s.replaceAll("'", "''")}'`;
const instance = await DuckDBInstance.create(':memory:');
const db = await instance.connect();
await db.run(`
  COPY (
    SELECT id AS custom_id, 'POST' AS method, '/v1/chat/completions' AS url,
           {'model': ${quote(model)},
            'messages': [{'role': 'system', 'content': ${quote(system)}},
                         {'role': 'user', 'content': ${quote(prefix)} || review}]} AS body
    FROM read_csv(${quote(src)}, header = true, quote = '"', escape = '"', all_varchar = true, parallel = false)
  ) TO ${quote(dst)} (FORMAT json)`);
const result = await db.runAndReadAll(
  `SELECT count(*) FROM read_csv(${quote(src)}, header = true, all_varchar = true, parallel = false)`,
);
const rows = Number(result.getRows()[0][0]);
console.log(JSON.stringify({ rows, maxRssKb: process.resourceUsage().maxRSS }));
