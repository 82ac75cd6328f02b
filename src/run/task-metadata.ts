import { BatchpipeError } from '../errors.js';
import type { ProviderProfile } from '../providers/profile.js';

/** The metadata keys batchpipe sets on every batch: how a run finds its batches again. */
export const OWN_METADATA_KEYS = ['ds_name', 'ds_description', 'bp_run', 'bp_job'] as const;

/** What the user names a run's batches with: kept in the manifest, the same for every batch of the run. */
export interface TaskLabel {
  /** `--task-name`: the start of every batch's `ds_name` (the run's identity follows it). */
  name: string | null;
  /** `--task-description`: `ds_description`, cut to the provider's length. */
  description: string | null;
  /** `--metadata k=v`: more metadata on every batch. */
  metadata: Record<string, string>;
}

/** Characters as the documents count them: code points, not UTF-16 units. */
function chars(text: string): string[] {
  return [...text];
}

/** `text` cut to `max` characters (code points), spaces at the cut dropped. */
export function cutTo(text: string, max: number): string {
  const all = chars(text);
  return all.length <= max ? text : all.slice(0, Math.max(0, max)).join('').trimEnd();
}

/**
 * A job's `ds_name`: the task name (if any), cut so that the run's identity (`bp-<run>-<job>`, which
 * adoption matches on) still fits within `max` characters after it, then a space and the identity.
 */
export function taskDsName(identity: string, taskName: string | null | undefined, max: number): string {
  const room = max - chars(identity).length - 1;
  const name = taskName ? cutTo(taskName.trim(), room) : '';
  return name === '' ? cutTo(identity, max) : `${name} ${identity}`;
}

/** True when `dsName` is a job's name with this identity: the identity alone, or after a task name. */
export function hasIdentity(dsName: unknown, identity: string): boolean {
  return typeof dsName === 'string' && (dsName === identity || dsName.endsWith(` ${identity}`));
}

/**
 * The user's task label, checked against the provider before anything is sent: batchpipe's own keys
 * are not the user's to set, and where the provider bounds metadata (OpenAI: 16 pairs, batchpipe's
 * four included; keys up to 64 and values up to 512 characters) the label must fit.
 */
export function checkTaskLabel(
  label: {
    taskName?: string | undefined;
    taskDescription?: string | undefined;
    metadata?: Record<string, string> | undefined;
  },
  profile: ProviderProfile,
): TaskLabel {
  const metadata = label.metadata ?? {};
  for (const key of Object.keys(metadata)) {
    if ((OWN_METADATA_KEYS as readonly string[]).includes(key))
      throw new BatchpipeError(
        'BP_INVALID_OPTION',
        `option "metadata": key "${key}" is batchpipe's own (${OWN_METADATA_KEYS.join(', ')}); name the batches with the taskName and taskDescription options`,
        { option: 'metadata' },
      );
  }
  const limits = profile.metadataLimits;
  if (limits) {
    const pairs = Object.keys(metadata).length + OWN_METADATA_KEYS.length;
    if (pairs > limits.maxPairs)
      throw new BatchpipeError(
        'BP_INVALID_OPTION',
        `option "metadata": ${Object.keys(metadata).length} pairs and batchpipe's own ${OWN_METADATA_KEYS.length} make ${pairs}; ${profile.title} takes at most ${limits.maxPairs} (so at most ${limits.maxPairs - OWN_METADATA_KEYS.length} of yours)`,
        { option: 'metadata' },
      );
    for (const [key, value] of Object.entries(metadata)) {
      if (chars(key).length > limits.maxKeyChars)
        throw new BatchpipeError(
          'BP_INVALID_OPTION',
          `option "metadata": key "${cutTo(key, 20)}..." is ${chars(key).length} characters; ${profile.title} takes keys of at most ${limits.maxKeyChars}`,
          { option: 'metadata' },
        );
      if (chars(value).length > limits.maxValueChars)
        throw new BatchpipeError(
          'BP_INVALID_OPTION',
          `option "metadata": the value of "${key}" is ${chars(value).length} characters; ${profile.title} takes values of at most ${limits.maxValueChars}`,
          { option: 'metadata' },
        );
    }
  }
  const name = label.taskName?.trim() || null;
  const description = label.taskDescription?.trim() || null;
  return {
    name,
    description: description === null ? null : cutTo(description, profile.taskName.maxDescriptionChars),
    metadata,
  };
}
