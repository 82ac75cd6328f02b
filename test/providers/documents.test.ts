/**
 * The provider facts batchpipe takes from the documents in ref/, each test citing the sentence it
 * follows: the Beijing model list, dated snapshots (batchpipe's policy), and thinking warnings.
 */
import { describe, expect, it } from 'vitest';
import { BATCH_CHAT_MODELS, PROFILES } from '../../src/providers/profiles.js';
import { resolveProfile, snapshotOf, thinksByDefault } from '../../src/providers/resolve-profile.js';
import { toRequests } from '../../src/transforms/to-requests.js';
import { validateRequests } from '../../src/transforms/validate-requests.js';
import type { Rejection, RequestItem, Warning } from '../../src/types.js';
import { row, through } from '../helpers.js';

const ids = (models: readonly { id: string }[]) => models.map((m) => m.id);

async function check(provider: 'dashscope' | 'dashscope-cn', model: string) {
  const warnings: Warning[] = [];
  const stage = validateRequests({ provider, onWarning: (w) => warnings.push(w) });
  const request = {
    custom_id: 'a',
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model, enable_thinking: false, messages: [{ role: 'user', content: 'hi' }] },
  };
  const [out] = await through<RequestItem | Rejection>(stage, [
    { kind: 'request', index: 1, file: 'r.jsonl', line: 1, request },
  ]);
  return { out: out!, warnings };
}

describe('the Beijing model list (ref/modelstudio-batch-file-input.txt)', () => {
  const beijing = ids(PROFILES['dashscope-cn'].models);

  it('"The stable versions and some latest versions of Qwen-Max, Plus, Flash, and Long": no Turbo', () => {
    for (const id of ['qwen-max', 'qwen-plus', 'qwen-flash', 'qwen-long']) expect(beijing).toContain(id);
    // Singapore's list names qwen-turbo; Beijing's does not (it is not a superset of Singapore's).
    expect(ids(PROFILES.dashscope.models)).toContain('qwen-turbo');
    expect(beijing.filter((id) => id.includes('turbo'))).toEqual([]);
  });

  it('"The QwQ series (qwq-plus) and some third-party models (deepseek-r1, deepseek-v3.2, deepseek-v3)"', () => {
    for (const id of ['qwq-plus', 'deepseek-r1', 'deepseek-v3.2', 'deepseek-v3'])
      expect(beijing).toContain(id);
  });

  it('"the maximum context tokens per request is 256 K for qwen3.7-max, qwen3.7-plus, qwen3.6-plus, qwen3.5-plus, and qwen3.5-flash"', () => {
    for (const id of ['qwen3.7-max', 'qwen3.7-plus', 'qwen3.6-plus', 'qwen3.5-plus', 'qwen3.5-flash']) {
      expect(PROFILES['dashscope-cn'].models.find((m) => m.id === id)?.contextWindow).toBe(256 * 1024);
    }
  });

  it('"Qwen-VL-Max, Plus, and Flash. The Qwen-OCR model is also supported." "The text-embedding-v4 model."', () => {
    const kind = (id: string) => PROFILES['dashscope-cn'].models.find((m) => m.id === id)?.kind;
    for (const id of ['qwen-vl-max', 'qwen-vl-plus', 'qwen-vl-flash', 'qwen-vl-ocr'])
      expect(kind(id)).toBe('vision');
    expect(kind('text-embedding-v4')).toBe('embedding');
    // ref/ gives no input or token limits for text-embedding-v4: none are borrowed from OpenAI's.
    expect(
      PROFILES['dashscope-cn'].models.find((m) => m.id === 'text-embedding-v4')?.contextWindow,
    ).toBeUndefined();
  });

  it('refuses qwen-turbo under dashscope-cn and takes it under dashscope', async () => {
    expect((await check('dashscope-cn', 'qwen-turbo')).out).toMatchObject({
      kind: 'rejection',
      code: 'BP_MODEL_NOT_OFFERED',
    });
    expect((await check('dashscope', 'qwen-turbo')).out.kind).toBe('request');
  });
});

describe('dated snapshots of listed models: accepted with a warning (batchpipe policy, not the documents)', () => {
  it('knows the listed model a snapshot pins', () => {
    const beijing = resolveProfile('dashscope-cn');
    expect(snapshotOf(beijing, 'qwen-plus-2025-07-28')?.id).toBe('qwen-plus');
    expect(snapshotOf(beijing, 'deepseek-r1-0528')?.id).toBe('deepseek-r1');
    expect(snapshotOf(beijing, 'qwen-plus')).toBeUndefined();
    expect(snapshotOf(beijing, 'qwen-turbo-2024-11-01')).toBeUndefined();
    expect(snapshotOf(beijing, 'qwen-plus-preview')).toBeUndefined();
  });

  it('accepts qwen-plus-2025-07-28 with BP_WARN_MODEL_SNAPSHOT, and refuses a snapshot of an unlisted model', async () => {
    const { out, warnings } = await check('dashscope-cn', 'qwen-plus-2025-07-28');
    expect(out.kind).toBe('request');
    expect(warnings).toEqual([
      expect.objectContaining({
        code: 'BP_WARN_MODEL_SNAPSHOT',
        message: expect.stringContaining('dated snapshot of qwen-plus'),
        first: expect.objectContaining({ custom_id: 'a', line: 1 }),
      }),
    ]);
    expect((await check('dashscope-cn', 'qwen-turbo-2024-11-01')).out).toMatchObject({
      code: 'BP_MODEL_NOT_OFFERED',
    });
    // A listed id raises no warning.
    expect((await check('dashscope-cn', 'qwen-plus')).warnings).toEqual([]);
  });
});

describe('thinking by default (ref/modelstudio-batch-file-input.txt)', () => {
  // "The qwen3.7, qwen3.6, and qwen3.5 series models have thinking mode enabled by default. If you use
  // a hybrid thinking model, you must explicitly set the enable_thinking parameter."
  it('is said of the qwen3.5/3.6/3.7 series only', () => {
    const beijing = PROFILES['dashscope-cn'];
    for (const id of ['qwen3.7-max', 'qwen3.7-plus', 'qwen3.6-plus', 'qwen3.5-plus', 'qwen3.5-flash'])
      expect(thinksByDefault(beijing, id)).toBe(true);
    for (const id of ['qwq-plus', 'deepseek-r1', 'qwen-plus', 'deepseek-v3.2', 'qwen-max'])
      expect(thinksByDefault(beijing, id)).toBe(false);
    // Batch Chat: "The qwen3.5 series (such as qwen3.5-plus and qwen3.5-flash) enable thinking mode by default."
    expect(BATCH_CHAT_MODELS.filter((m) => m.thinksByDefault).map((m) => m.id)).toEqual([
      'qwen3.5-plus',
      'qwen3.5-flash',
    ]);
  });

  it('warns "set enable_thinking" for qwen3.5-plus, and not for the reasoning-only qwq-plus and deepseek-r1', async () => {
    const warned = async (model: string) => {
      const stage = toRequests({ provider: 'dashscope-cn', model, template: '{{t}}' });
      await through(stage, [row(1, { t: 'a' })]);
      return stage.warnings.list().map((w) => w.code);
    };
    expect(await warned('qwen3.5-plus')).toEqual(['BP_WARN_THINKING_DEFAULT']);
    expect(await warned('qwq-plus')).toEqual([]);
    expect(await warned('deepseek-r1')).toEqual([]);
    expect(PROFILES['dashscope-cn'].models.filter((m) => m.reasoningOnly).map((m) => m.id)).toEqual([
      'qwq-plus',
      'deepseek-r1',
    ]);
  });
});
