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

/** `{{ name }}`, or `{{ "any name" }}` (a JSON string: quotes, braces, edge spaces, escapes). */
const PLACEHOLDER = /\{\{\s*(?:("(?:[^"\\]|\\.)*")|([^{}]*?))\s*\}\}/g;

/**
 * Compiles `{{column}}` placeholders. A column name may hold spaces and dots: `{{review text}}`,
 * `{{user.name}}` (a dotted name is looked up as a column first, then as a path into nested JSON).
 * Any other name is written as a JSON string: `{{"say \"hi\""}}`, `{{" padded "}}`, `{{"a}}b"}}`.
 * Values render as text: strings verbatim, null/undefined as "", other values as JSON.
 * `{{` with no matching `}}` is a BP_TEMPLATE_SYNTAX error at compile time.
 */
export function compileTemplate(template: string): CompiledTemplate {
  const literals: string[] = [];
  const refs: ColumnRef[] = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    const name = match[1] === undefined ? match[2]! : quotedName(match[1], match.index);
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
          `the template uses ${placeholder(ref.name)} but the row has no column ${JSON.stringify(ref.name)}`,
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

function quotedName(json: string, at: number): string {
  try {
    return JSON.parse(json) as string;
  } catch {
    throw new BatchpipeError(
      'BP_TEMPLATE_SYNTAX',
      `the quoted column name ${json} at character ${at + 1} of the template is not a JSON string`,
    );
  }
}

/** How a template names a column: `{{name}}`, or `{{"name"}}` when the plain form would not read it back. */
export function placeholder(name: string): string {
  const plain = name !== '' && name.trim() === name && !/[{}]/.test(name) && !name.startsWith('"');
  return plain ? `{{${name}}}` : `{{${JSON.stringify(name)}}}`;
}
