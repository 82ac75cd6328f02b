/** The forms an embeddings request's `input` takes (OpenAI CreateEmbeddingRequest.input, ref/openai-openapi-full.yaml). */
/**
 * The inputs an embeddings `input` holds, each a string or a token array, or undefined when it is
 * none of the allowed forms. A flat array of integers is one input (its tokens).
 */
export function embeddingInputs(input: unknown): Array<string | number[]> | undefined {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input) || input.length === 0) return undefined;
  if (input.every(isToken)) return [input as number[]];
  if (input.every((x) => typeof x === 'string')) return input as string[];
  if (input.every((x) => Array.isArray(x) && x.length > 0 && x.every(isToken))) return input as number[][];
  return undefined;
}

/** How many inputs an embeddings request embeds (what OpenAI's 50,000 per batch counts). */
export function embeddingInputCount(input: unknown): number {
  return embeddingInputs(input)?.length ?? 1;
}

function isToken(x: unknown): boolean {
  return Number.isInteger(x) && (x as number) >= 0;
}
