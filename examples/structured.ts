/**
 * Labelling with a zod schema: each answer must be a JSON object of this shape (sent as the request's
 * structured-output format), is checked against it on the way back, and its fields become columns.
 * Answers that break the schema come out `invalid_output`, with what was wrong in error_message.
 *
 *   npx tsx examples/structured.ts [input.csv] [out.jsonl]
 */
import { resolveConnection, runTable, startLocalService } from 'batchpipe';
import { z } from 'zod';

const [input = 'examples/reviews.csv', out = '.batchpipe/examples/structured.jsonl'] = process.argv.slice(2);

const Review = z.object({
  sentiment: z.enum(['positive', 'negative', 'neutral']),
  would_buy_again: z.boolean(),
  problems: z.array(z.string()).describe('what went wrong, in a few words each; empty if nothing'),
});

const real = Boolean(process.env.DASHSCOPE_API_KEY);
const service = real ? undefined : await startLocalService();
try {
  const connection = service
    ? resolveConnection({ provider: 'local', baseURL: service.url })
    : resolveConnection({ provider: 'dashscope' });
  const result = await runTable(input, connection, {
    model: 'qwen-plus',
    enableThinking: false,
    system: 'You read product reviews and answer in JSON.',
    template: 'Review of a {{product}} ({{rating}} stars): {{review}}',
    schema: Review,
    idColumn: 'id',
    // Answers that break the schema are asked again once, with what was wrong.
    maxReasks: 1,
    out,
  });
  console.log(
    `${result.state}: wrote ${result.joined?.rows} rows to ${out}: ${JSON.stringify(result.joined?.statuses)}`,
  );
} finally {
  await service?.close();
}
