/**
 * Embeddings of a text column into Parquet: one `/v1/embeddings` request per row, through a Batch API
 * run, and the vectors joined back beside the rows as an `embedding` list column (float64) in a
 * Parquet file that DuckDB, pandas or Arrow read directly. The embedded service's test engine returns
 * deterministic vectors of the model's size (no inference).
 *
 *   npx tsx examples/embeddings.ts [input.csv] [out.parquet]
 */
import { pipeline } from 'node:stream/promises';
import {
  batchSink,
  csvSource,
  joinResults,
  parquetSink,
  startLocalService,
  toRequests,
  validateRequests,
} from 'batchpipe';

const [input = 'examples/reviews.csv', out = '.batchpipe/examples/embeddings.parquet'] =
  process.argv.slice(2);

const real = Boolean(process.env.DASHSCOPE_API_KEY);
const service = real ? undefined : await startLocalService();
try {
  const sink = parquetSink(out, { compression: 'zstd' });
  await pipeline(
    csvSource(input),
    toRequests({
      endpoint: '/v1/embeddings',
      model: 'text-embedding-v4',
      template: '{{review}}',
      idColumn: 'id',
    }),
    validateRequests(),
    batchSink(service ? { provider: 'local', baseURL: service.url } : { provider: 'dashscope' }),
    joinResults({ source: input, idColumn: 'id', endpoint: '/v1/embeddings' }),
    sink,
  );
  console.log(`wrote ${sink.summary?.rows} rows with their embeddings to ${out}`);
} finally {
  await service?.close();
}
