/** Rows of the typed fixture table. */
export const ROWS = 10000;

/** Every type the issue lists, one column each, as DuckDB writes them. */
export const TYPES_SELECT = `
SELECT
  (9007199254740993 + i)::BIGINT AS id,
  (i % 100 - 50)::TINYINT AS i8, (i - 1000)::SMALLINT AS i16, (i * 1000)::INTEGER AS i32,
  (i % 200)::UTINYINT AS u8, (i + 55000)::USMALLINT AS u16, (4000000000 + i)::UINTEGER AS u32,
  (18446744073709540000 + i)::UBIGINT AS u64,
  (i / 4)::FLOAT AS f32, (i / 10)::DOUBLE AS f64, (i % 3 = 0) AS flag,
  CASE WHEN i % 7 = 0 THEN NULL ELSE 'row ' || i || ' "quoted" é\\ tab' || chr(9) || 'end' END AS txt,
  ('ab' || i)::BLOB AS bin,
  DATE '2024-01-01' + i::INTEGER AS day,
  TIME '01:02:03.456789' AS clock,
  make_timestamp(1704067200000000 + i * 1000003) AS ts_us,
  make_timestamp(1704067200000000 + i * 7000)::TIMESTAMP_MS AS ts_ms,
  TIMESTAMP_NS '2024-01-02 03:04:05.123456789' AS ts_ns,
  make_timestamp(1704067200000000 + i * 1000003)::TIMESTAMPTZ AS ts_tz,
  TIMESTAMP '1969-12-31 23:59:59.250001' AS ts_old,
  ((i - 1500) * 1.001)::DECIMAL(18,3) AS dec18,
  (123456789012345678.0123456789::DECIMAL(38,10) + i) AS dec38,
  NULL::INTEGER AS nothing,
  CASE WHEN i % 5 = 0 THEN NULL WHEN i % 5 = 1 THEN []::INTEGER[] ELSE [i, NULL, i + 1] END AS list,
  {'a': i, 'b': 'x' || i, 'big': 9007199254740993::BIGINT} AS struct,
  MAP {'k': i, 'j': -i} AS map,
  ['s' || (i % 4)] AS words
FROM range(${ROWS}) t(i)`;

const pad = (n: number | bigint, width: number) => String(n).padStart(width, '0');

/** A timestamp's ISO text from microseconds (no zone). */
function isoMicros(micros: bigint): string {
  const seconds = micros / 1000000n;
  const fraction = micros % 1000000n;
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${pad(fraction, 6)}`;
}

/** Row `i`'s values as parquetSource reads them (docs/formats.md). */
export function expectedValues(i: number): Record<string, unknown> {
  const dec18 = (i - 1500) * 1001;
  const dec18Text = `${dec18 < 0 ? '-' : ''}${Math.floor(Math.abs(dec18) / 1000)}.${pad(Math.abs(dec18) % 1000, 3)}`;
  const micros = 1704067200000000n + BigInt(i) * 1000003n;
  return {
    id: String(9007199254740993n + BigInt(i)),
    i8: (i % 100) - 50,
    i16: i - 1000,
    i32: i * 1000,
    u8: i % 200,
    u16: i + 55000,
    u32: 4000000000 + i,
    u64: String(18446744073709540000n + BigInt(i)),
    f32: i / 4,
    f64: i / 10,
    flag: i % 3 === 0,
    txt: i % 7 === 0 ? null : `row ${i} "quoted" é\\ tab\tend`,
    bin: Buffer.from(`ab${i}`).toString('base64'),
    day: new Date(Date.UTC(2024, 0, 1 + i)).toISOString().slice(0, 10),
    clock: '01:02:03.456789',
    ts_us: isoMicros(micros),
    ts_ms: new Date(1704067200000 + i * 7).toISOString().slice(0, 23),
    ts_ns: '2024-01-02T03:04:05.123456789',
    ts_tz: `${isoMicros(micros)}Z`,
    ts_old: '1969-12-31T23:59:59.250001',
    dec18: dec18Text,
    dec38: `${123456789012345678n + BigInt(i)}.0123456789`,
    nothing: null,
    list: i % 5 === 0 ? null : i % 5 === 1 ? [] : [i, null, i + 1],
    struct: { a: i, b: `x${i}`, big: '9007199254740993' },
    map: { k: i, j: -i || 0 },
    words: [`s${i % 4}`],
  };
}
