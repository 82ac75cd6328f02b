/**
 * An ETL script: a CSV table in, its rows labelled through a Batch API run, the labelled table out,
 * composed from batchpipe's streams with `pipeline()`. With no provider key set it runs on the
 * embedded local service, whose test engine does no inference (its labels are placeholders).
 *
 *   npx tsx examples/etl.ts [input.csv] [out.csv]
 */
import { pipeline } from 'node:stream/promises';
import {
  batchSink,
  csvSink,
  csvSource,
  joinResults,
  mapRows,
  startLocalService,
  toRequests,
  validateRequests,
} from 'batchpipe';

const [input = 'examples/reviews.csv', out = '.batchpipe/examples/etl-labeled.csv'] = process.argv.slice(2);
const labels = ['positive', 'negative', 'neutral'];

// A provider key in the environment means a real run; else the embedded service answers.
const real = Boolean(process.env.DASHSCOPE_API_KEY);
const service = real ? undefined : await startLocalService();
try {
  const sink = csvSink(out);
  await pipeline(
    csvSource(input),
    // Clean the text before it becomes a prompt; rows stay in batchpipe's batches.
    mapRows((values) => ({ ...values, review: String(values.review).replace(/\s+/g, ' ').trim() })),
    toRequests({
      model: 'qwen-plus',
      enableThinking: false,
      template: 'Classify the sentiment of this review as positive, negative or neutral: {{review}}',
      labels,
      idColumn: 'id',
    }),
    validateRequests(),
    batchSink(service ? { provider: 'local', baseURL: service.url } : { provider: 'dashscope' }),
    joinResults({ source: input, idColumn: 'id', labels }),
    sink,
  );
  console.log(`wrote ${out}: ${JSON.stringify(sink.summary)}`);
} finally {
  await service?.close();
}
