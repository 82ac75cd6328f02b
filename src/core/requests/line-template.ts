import type { WarningCode } from '../../internal/warnings.js';
import type { RequestLine, Row, RowValues } from '../../types.js';
import { putValue } from '../rows/own-value.js';
import { answerSchemaText } from '../structured/structured-output.js';
import type { RequestBuilder } from './request-builder.js';
import { ID_SLOT } from './template-slots.js';

/** Marks where a value goes in a serialized line; private-use characters JSON.stringify leaves alone. */
const OPEN = '\uE000';
const CLOSE = '\uE001';
const SLOT = /\uE000(-?\d+)\uE001/g;

/**
 * A request line as bytes with holes: pieces[0] slot[0] pieces[1] ... pieces[n]. Each slot holds a
 * column's text (an index into `columns`) or the custom_id (ID_SLOT), JSON-escaped. Built by
 * serializing the request the RequestBuilder makes for a row of markers, so field order and every
 * fixed field are exactly what JSON.stringify of the built request gives.
 */
export interface LineTemplate {
  pieces: Buffer[];
  slots: number[];
  /** The columns the slots read. */
  columns: string[];
  /** Bytes of all pieces (the newline included). */
  fixedBytes: number;
  /** The marker request, for the rules that hold for every line alike. */
  request: RequestLine;
  model: string;
  url: string;
  /** Warnings every line raises (one per line, as building each request would count them). */
  warnings: Array<{ code: WarningCode; message: string }>;
}

/** True when a text would confuse the markers. */
export function hasMarkers(text: string): boolean {
  return text.includes(OPEN) || text.includes(CLOSE);
}

/**
 * The line template of a builder's requests, or undefined when its requests cannot be made by
 * substitution (a mapper, or options that hold the marker characters themselves).
 */
export function compileLineTemplate(builder: RequestBuilder): LineTemplate | undefined {
  const settings = builder.settings;
  // Images are read from files and videos are lists: not a substitution.
  if (settings.mapper !== undefined || builder.hasMedia) return undefined;
  const columns = builder.columns;
  const fixed = JSON.stringify([
    settings.template,
    settings.system,
    settings.extraBody,
    settings.responseFormat,
    settings.stop,
    settings.model,
    settings.labels,
    settings.schema === undefined ? undefined : answerSchemaText(settings.schema),
    columns,
  ]);
  if (hasMarkers(fixed)) return undefined;
  const values: RowValues = {};
  columns.forEach((name, c) => {
    putValue(values, name, `${OPEN}${c}${CLOSE}`);
  });
  // A builder of its own: its warnings are the ones every line raises.
  const markers = builder.copy();
  const row: Row = { kind: 'row', index: 1, file: '<template>', line: 1, values };
  const built = markers.build(row);
  if (built instanceof Promise || built.kind !== 'request') return undefined;
  const request = built.request;
  // The custom_id is computed per row, not copied from a column.
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
  const warnings = markers.warnings.list().map(({ code, message }) => ({ code, message }));
  return {
    pieces,
    slots,
    columns,
    fixedBytes: pieces.reduce((n, p) => n + p.length, 0),
    request,
    model: String(request.body.model),
    url: request.url,
    warnings,
  };
}
