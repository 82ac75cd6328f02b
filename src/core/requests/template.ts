import { BatchpipeError } from '../../errors.js';
import type { RowValues } from '../../types.js';
import { type ColumnRef, columnRef } from '../rows/column-ref.js';
import { textOf } from '../rows/row-batch.js';

/** A prompt template compiled once: `render` runs per row with no parsing. */
export interface CompiledTemplate {
  /** The column names the template reads, in order of first use. */
  columns: string[];
  /** Renders the template over a row. Throws BP_TEMPLATE_MISSING_COLUMN naming the first absent column. */
  render(values: RowValues): string;
  /** The first column the template reads that `values` lacks, if any. */
  missing(values: RowValues): string | undefined;
  /** The template's text without its placeholders. */
  literal: string;
}

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/**
 * Compiles `{{column}}` placeholders. A column name may hold spaces and dots: `{{review text}}`,
 * `{{user.name}}` (a dotted name is looked up as a column first, then as a path into nested JSON).
 * Values render as text: strings verbatim, null/undefined as "", other values as JSON.
 * `{{` with no matching `}}` is a BP_TEMPLATE_SYNTAX error at compile time.
 */
export function compileTemplate(template: string): CompiledTemplate {
  const literals: string[] = [];
  const refs: ColumnRef[] = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = match[1]!;
    if (!name)
      throw new BatchpipeError(
        'BP_TEMPLATE_SYNTAX',
        `empty placeholder "{{}}" at character ${match.index + 1} of the template`,
      );
    literals.push(template.slice(last, match.index));
    refs.push(columnRef(name));
    last = match.index + match[0].length;
  }
  const tail = template.slice(last);
  const stray = literals.concat(tail).findIndex((text) => text.includes('{{'));
  if (stray !== -1) {
    throw new BatchpipeError('BP_TEMPLATE_SYNTAX', 'the template has "{{" without a matching "}}"');
  }
  literals.push(tail);
  const columns = [...new Set(refs.map((r) => r.name))];

  const missing = (values: RowValues): string | undefined => {
    for (const ref of refs) if (!ref.has(values)) return ref.name;
    return undefined;
  };
  const render = (values: RowValues): string => {
    let out = literals[0]!;
    for (let i = 0; i < refs.length; i++) {
      const ref = refs[i]!;
      const value = ref.get(values);
      if (value === undefined && !ref.has(values)) {
        throw new BatchpipeError(
          'BP_TEMPLATE_MISSING_COLUMN',
          `the template uses {{${ref.name}}} but the row has no column "${ref.name}"`,
          {
            column: ref.name,
          },
        );
      }
      out += textOf(value) + literals[i + 1]!;
    }
    return out;
  };
  return { columns, render, missing, literal: literals.join('') };
}
