import type { WarningCode } from '../../internal/warnings.js';
import type { RequestBuilder } from '../../transforms/to-requests.js';
import type { RequestLine, Row, RowValues } from '../../types.js';

/** Marks where a value goes in a serialized line; private-use characters JSON.stringify leaves alone. */
const OPEN = '\uE000';
const CLOSE = '\uE001';
const SLOT = /\uE000(-?\d+)\uE001/g;

/** The custom_id's slot number. */
export const ID_SLOT = -1;

/**
 * A request line as bytes with holes: pieces[0] slot[0] pieces[1] ... pieces[n]. Each slot holds a
 * header column's value (its index) or the custom_id (ID_SLOT), JSON-escaped. Built by serializing the
 * request the RequestBuilder makes for a row of markers, so field order and every fixed field match
 * the stream path byte for byte.
 */
export interface LineTemplate {
  pieces: Buffer[];
  slots: number[];
  /** Bytes of all pieces (plus the newline). */
  fixedBytes: number;
  /** The marker request, for the rules that hold for every line alike. */
  request: RequestLine;
  /** Warnings every line raises (one per line, as the stream path counts them). */
  warnings: Array<{ code: WarningCode; message: string }>;
}

/** True when a text would confuse the markers (the fast path then steps aside). */
export function hasMarkers(text: string): boolean {
  return text.includes(OPEN) || text.includes(CLOSE);
}

export function compileLineTemplate(builder: RequestBuilder, columns: string[], file: string): LineTemplate {
  const values: RowValues = {};
  columns.forEach((name, c) => {
    values[name] = `${OPEN}${c}${CLOSE}`;
  });
  const row: Row = { kind: 'row', index: 1, file, line: 1, values };
  const built = builder.build(row);
  if (built instanceof Promise || built.kind !== 'request')
    throw new Error('a template request cannot be built from markers');
  const request = built.request;
  // The custom_id is computed per row (customIdFor), not copied from a column.
  request.custom_id = `${OPEN}${ID_SLOT}${CLOSE}`;
  const text = `${JSON.stringify(request)}\n`;
  const pieces: Buffer[] = [];
  const slots: number[] = [];
  let last = 0;
  for (const match of text.matchAll(SLOT)) {
    pieces.push(Buffer.from(text.slice(last, match.index), 'utf8'));
    slots.push(Number(match[1]));
    last = match.index + match[0].length;
  }
  pieces.push(Buffer.from(text.slice(last), 'utf8'));
  const warnings = builder.warnings.list().map(({ code, message }) => ({ code, message }));
  return { pieces, slots, fixedBytes: pieces.reduce((n, p) => n + p.length, 0), request, warnings };
}
