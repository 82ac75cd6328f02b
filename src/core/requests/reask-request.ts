import type { ChatMessage, RequestLine } from '../../types.js';

/**
 * A new request for an answer that failed validation: the original conversation, the answer the model
 * gave, and a user turn saying what was wrong. It keeps the custom_id, so when its result comes back
 * the join prefers it to the invalid one (a valid answer outranks an invalid one). Only chat requests
 * can be re-asked; others give undefined.
 */
export function reaskRequest(
  request: RequestLine,
  answer: string | null,
  problem: string,
): RequestLine | undefined {
  const body = request.body as { messages?: unknown };
  if (!Array.isArray(body.messages)) return undefined;
  const messages: ChatMessage[] = [
    ...(body.messages as ChatMessage[]),
    { role: 'assistant', content: answer ?? '' },
    {
      role: 'user',
      content: `That answer is not valid: ${problem}. Reply again with only the JSON object, matching the required schema.`,
    },
  ];
  return { ...request, body: { ...request.body, messages } as RequestLine['body'] };
}
