import { checkChatBody } from './check-body.js';
import type { Engine, EngineAnswer } from './engine.js';

const ANSWER_TEXT = 'dry run: the request is well-formed; no inference was run and nothing is billed';

/**
 * DashScope's dry run ("model batch-test-model with endpoint /v1/chat/ds-test ... validate your file
 * format without inference costs", ref/dashscope-batch-api.txt): each request's body is checked as a
 * chat request, a well-formed one gets a fixed completion with zero usage, a malformed one the 400 a
 * real call would get. The documents do not show the dry run's output lines; this shape lets a client
 * run its whole flow (download, parse, join) for free.
 */
export function createDryRunEngine(): Engine {
  return {
    name: 'dry-run',
    synchronous: true,
    async ready() {},
    answer(request): EngineAnswer {
      const found = checkChatBody(request.body);
      if (found)
        return {
          status: 400,
          json: JSON.stringify({
            error: { message: found.message, type: 'invalid_request_error', param: found.param, code: null },
          }),
          usage: null,
        };
      return {
        status: 200,
        json: JSON.stringify({
          id: `chatcmpl-dry-run-${request.key.length.toString(36)}`,
          object: 'chat.completion',
          created: request.now,
          model: request.body.model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: ANSWER_TEXT, refusal: null },
              finish_reason: 'stop',
              logprobs: null,
            },
          ],
          usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
        }),
        usage: null,
      };
    },
  };
}
