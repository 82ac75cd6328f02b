import type { Readable, Transform, Writable } from 'node:stream';
import {
  type BatchSinkStream,
  batchSink,
  csvSink,
  csvSource,
  type JoinedRow,
  type JoinResultsStream,
  joinResults,
  jsonlSource,
  type LocalService,
  type Mapper,
  mapRows,
  type PrepareResult,
  prepare,
  type ResultStatus,
  type Row,
  type RowValues,
  type ShardRequestsStream,
  shardRequests,
  startLocalService,
  type TableSinkStream,
  type ToRequestsStream,
  toRequests,
  type ValidateRequestsStream,
  validateRequests,
} from 'batchpipe';
import type { ProviderProfile } from 'batchpipe/providers';
import type { RunManifest } from 'batchpipe/runs';
import { describe, expectTypeOf, it } from 'vitest';

// The published signatures, as a user's editor sees them through the package's exports (dist/*.d.ts):
// checked by the compiler (`npm run lint`), and each expectation is evaluated by the test run too.
describe('the public API, by type', () => {
  it('sources are Readables; the request stages are Transforms with their warnings; sinks are Writables with summaries', () => {
    expectTypeOf(csvSource('x.csv')).toMatchTypeOf<Readable>();
    expectTypeOf(jsonlSource('x.jsonl')).toMatchTypeOf<Readable>();
    expectTypeOf(toRequests({ model: 'm', template: '{{a}}' })).toEqualTypeOf<ToRequestsStream>();
    expectTypeOf<ToRequestsStream>().toMatchTypeOf<Transform>();
    expectTypeOf(validateRequests()).toEqualTypeOf<ValidateRequestsStream>();
    expectTypeOf(shardRequests({ outDir: 'out' })).toEqualTypeOf<ShardRequestsStream>();
    expectTypeOf<ShardRequestsStream>().toMatchTypeOf<Writable>();
    expectTypeOf(csvSink('out.csv')).toEqualTypeOf<TableSinkStream>();
    expectTypeOf(batchSink).returns.toEqualTypeOf<BatchSinkStream>();
  });

  it('a mapper is a function of the row, or the path or URL of a module that exports one', () => {
    expectTypeOf<Mapper>().parameters.toEqualTypeOf<[RowValues, Row]>();
    expectTypeOf(toRequests)
      .parameter(0)
      .toHaveProperty('mapper')
      .toEqualTypeOf<Mapper | string | URL | undefined>();
    // @ts-expect-error a template is text
    expectTypeOf(() => toRequests({ model: 'm', template: 1 })).toBeFunction();
    expectTypeOf(mapRows)
      .parameter(0)
      .toEqualTypeOf<(values: RowValues, row: Row) => RowValues | Promise<RowValues>>();
  });

  it('joinResults hands on typed rows: the source values, then status and the result columns', () => {
    expectTypeOf(joinResults({ source: 'x.csv' })).toEqualTypeOf<JoinResultsStream>();
    expectTypeOf<JoinedRow>().toMatchTypeOf<Row>();
    expectTypeOf<JoinedRow['values']['status']>().toEqualTypeOf<ResultStatus>();
    expectTypeOf<JoinedRow['values']['error_code']>().toEqualTypeOf<string | null>();
    expectTypeOf<JoinedRow['values']['prompt_tokens']>().toEqualTypeOf<number | null>();
    expectTypeOf<ResultStatus>().toEqualTypeOf<
      | 'ok'
      | 'truncated'
      | 'failed'
      | 'rejected'
      | 'expired'
      | 'cancelled'
      | 'invalid_output'
      | 'stale'
      | 'missing'
    >();
  });

  it('the jobs resolve to their summaries; the local service and the subpath exports are typed', () => {
    expectTypeOf(prepare).returns.toEqualTypeOf<Promise<PrepareResult>>();
    expectTypeOf<PrepareResult['requests']>().toEqualTypeOf<number>();
    expectTypeOf(startLocalService).returns.toEqualTypeOf<Promise<LocalService>>();
    expectTypeOf<LocalService['url']>().toEqualTypeOf<string>();
    expectTypeOf<ProviderProfile['name']>().toBeString();
    expectTypeOf<RunManifest>().toHaveProperty('jobs');
  });
});
