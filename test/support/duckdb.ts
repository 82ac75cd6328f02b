import { DuckDBInstance } from '@duckdb/node-api';

/** An in-memory DuckDB (UTC session time zone), for writing Parquet fixtures and reading output back. */
export async function duckdb() {
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const db = await instance.connect();
  await db.run(`SET TimeZone = 'UTC'`);
  return {
    run: (sql: string) => db.run(sql),
    /** Rows as objects of DuckDB's JS values (bigints for BIGINT, strings for the rest via CAST as needed). */
    rows: async (sql: string): Promise<Record<string, unknown>[]> =>
      (await db.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[],
    close: () => {
      db.closeSync();
      instance.closeSync();
    },
  };
}
