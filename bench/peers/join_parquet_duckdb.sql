-- JOIN peer from Parquet into Parquet (snappy, batchpipe's default): join_duckdb.sql's columns and values,
-- the source read with read_parquet. Below, join_duckdb.sql's own header.
-- JOIN peer: DuckDB SQL writing the columns and values batchpipe writes (status ok/failed/missing,
-- content, error_code, error_message, prompt_tokens, completion_tokens), the source read with DuckDB's
-- default CSV reader (all_varchar: every field written back as read), at its default thread count.
-- $1 = source CSV, $2 = results JSONL, $3 = errors JSONL, $4 = output CSV. custom_id is row-<id>.
COPY (
  WITH lines AS (
    SELECT custom_id, response, error
    FROM read_json(['$2', '$3'], format = 'newline_delimited',
                   columns = {custom_id: 'VARCHAR', response: 'JSON', error: 'JSON'})
  ),
  res AS (
    SELECT custom_id,
           coalesce(nullif(error::VARCHAR, 'null')::JSON, response -> '$.body.error') AS failure,
           response ->> '$.body.choices[0].message.content' AS content,
           (response ->> '$.body.usage.prompt_tokens')::BIGINT AS prompt_tokens,
           (response ->> '$.body.usage.completion_tokens')::BIGINT AS completion_tokens
    FROM lines
  ),
  src AS (
    SELECT * FROM read_parquet('$1')
  )
  SELECT src.*,
         CASE WHEN res.custom_id IS NULL THEN 'missing'
              WHEN failure IS NOT NULL AND failure::VARCHAR <> 'null' THEN 'failed'
              ELSE 'ok' END AS status,
         CASE WHEN failure IS NOT NULL AND failure::VARCHAR <> 'null' THEN NULL ELSE content END AS content,
         CASE WHEN res.custom_id IS NULL THEN 'BP_RESULT_MISSING' ELSE failure ->> '$.code' END AS error_code,
         CASE WHEN res.custom_id IS NULL THEN 'no output or error line came back'
              ELSE failure ->> '$.message' END AS error_message,
         CASE WHEN failure IS NOT NULL AND failure::VARCHAR <> 'null' THEN NULL ELSE prompt_tokens END AS prompt_tokens,
         CASE WHEN failure IS NOT NULL AND failure::VARCHAR <> 'null' THEN NULL ELSE completion_tokens END AS completion_tokens
  FROM src LEFT JOIN res ON res.custom_id = concat('row-', src.id)
  -- Source order: the bench table's ids are its row numbers.
  ORDER BY CAST(src.id AS BIGINT)
) TO '$4' (FORMAT parquet, COMPRESSION snappy);
