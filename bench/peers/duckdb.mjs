// Runs one DuckDB SQL file as the peer (../shared/peers' runner, plus what the bench reads): `$1..$n`
// replaced by the arguments, DuckDB at its default thread count (DUCKDB_THREADS overrides, for a
// labelled second row at most). Prints the rows the COPY wrote and this process's peak RSS as JSON.
// Usage: node duckdb.mjs file.sql arg1 arg2 ...
import fs from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';

const [sqlFile, ...args] = process.argv.slice(2);
let sql = fs.readFileSync(sqlFile, 'utf8');
args.forEach((a, i) => {
  sql = sql.replaceAll(`$${i + 1}`, a.replaceAll("'", "''"));
});
const threads = process.env.DUCKDB_THREADS;
const instance = await DuckDBInstance.create(':memory:', threads ? { threads } : {});
const db = await instance.connect();
const copied = await db.runAndReadAll(sql);
const rows = Number(copied.getRows()[0][0]);
console.log(JSON.stringify({ rows, maxRssKb: process.resourceUsage().maxRSS }));
