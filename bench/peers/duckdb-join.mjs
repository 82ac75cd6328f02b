// DuckDB joining the same result files onto the same CSV: SQL LEFT JOIN by custom_id, ORDER BY the
// source row number, COPY to CSV with the same result columns. Prints rows and peak RSS as JSON.
// Usage: node duckdb-join.mjs source.csv id_column out.csv results.jsonl [errors.jsonl ...]
import { DuckDBInstance } from '@duckdb/node-api';

const [src, idColumn, dst, ...resultFiles] = process.argv.slice(2);
const quote = (s) => `'${s.replaceAll("'", "''")}'`;
const ident = (s) => `"${s.replaceAll('"', '""')}"`;
const files = `[${resultFiles.map(quote).join(', ')}]`;
const instance = await DuckDBInstance.create(':memory:');
const db = await instance.connect();
const copied = await db.runAndReadAll(`
  COPY (
    WITH source AS (
      SELECT row_number() OVER () AS source_row, *
      FROM read_csv(${quote(src)}, header = true, quote = '"', escape = '"', all_varchar = true, parallel = false)
    ),
    lines AS (
      SELECT custom_id, response, error
      FROM read_json(${files}, format = 'newline_delimited',
                     columns = {custom_id: 'VARCHAR', response: 'JSON', error: 'JSON'})
    ),
    results AS (
      SELECT custom_id,
             coalesce(error, response -> '$.body.error') AS failure,
             response ->> '$.body.choices[0].message.content' AS content,
             (response ->> '$.body.usage.prompt_tokens')::BIGINT AS prompt_tokens,
             (response ->> '$.body.usage.completion_tokens')::BIGINT AS completion_tokens
      FROM lines
    )
    SELECT source.* EXCLUDE (source_row),
           CASE WHEN results.custom_id IS NULL THEN 'missing'
                WHEN failure IS NOT NULL AND failure::VARCHAR <> 'null' THEN 'failed'
                ELSE 'ok' END AS status,
           content,
           CASE WHEN results.custom_id IS NULL THEN 'BP_RESULT_MISSING' ELSE failure ->> '$.code' END AS error_code,
           CASE WHEN results.custom_id IS NULL THEN 'no output or error line came back'
                ELSE failure ->> '$.message' END AS error_message,
           prompt_tokens,
           completion_tokens
    FROM source LEFT JOIN results ON results.custom_id = source.${ident(idColumn)}
    ORDER BY source.source_row
  ) TO ${quote(dst)} (FORMAT csv, HEADER true)`);
// COPY answers with the number of rows it wrote.
const rows = Number(copied.getRows()[0][0]);
console.log(JSON.stringify({ rows, maxRssKb: process.resourceUsage().maxRSS }));
