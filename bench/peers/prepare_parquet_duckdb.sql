-- PREPARE peer from Parquet: DuckDB SQL, the same request lines as prepare_duckdb.sql from the table
-- DuckDB wrote as zstd Parquet. $1 = input Parquet, $2 = output JSONL.
COPY (
  SELECT
    concat('row-', id) AS custom_id,
    'POST' AS method,
    '/v1/chat/completions' AS url,
    {
      'model': 'qwen-plus',
      'messages': [
        {'role': 'system', 'content': 'Classify the sentiment of the product review as positive, negative or neutral. Reply with one word.'},
        {'role': 'user', 'content': concat('Title: ', title, chr(10), 'Review: ', review)}
      ]
    } AS body
  FROM read_parquet('$1')
) TO '$2' (FORMAT json);
