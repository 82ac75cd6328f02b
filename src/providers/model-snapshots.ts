/**
 * Dated snapshots: `qwen-plus-2025-07-28` or `deepseek-r1-0528` pins one release of `qwen-plus` or
 * `deepseek-r1`. The batch documents list model names, not their snapshots (ref/modelstudio-batch-
 * file-input.txt: "The stable versions and some latest versions of Qwen-Max, Plus, Flash, and Long").
 * batchpipe's policy, not the documents': a snapshot of a listed model is accepted with a warning
 * (BP_WARN_MODEL_SNAPSHOT) rather than refused, since refusing would block a model the provider may
 * well run; the provider has the last word.
 */
const SNAPSHOT = /^(.+)-(?:\d{4}-\d{2}-\d{2}|\d{4})$/;

/** The model a dated snapshot id pins (`qwen-plus-2025-07-28` -> `qwen-plus`), or undefined. */
export function snapshotBase(model: string): string | undefined {
  return SNAPSHOT.exec(model)?.[1];
}
