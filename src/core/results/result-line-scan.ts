/**
 * Reads a result line straight from its bytes into a sparse copy of what JSON.parse would give: only
 * the members the result parser looks at (custom_id, error, the response's status, ids, model, usage,
 * first choice, and the rest of an answer's body where it reads it), everything else checked and
 * skipped. JSON.parse built every object and string of a line (about 2 us a line of a chat answer)
 * to read six of them.
 *
 * The copy holds, at each member the parser reads, the value JSON.parse gives there: strings and
 * numbers are decoded from their bytes, and anything of a shape this reader does not follow (an
 * `error` object, a content list, an embedding) is handed to JSON.parse as its own text. A repeated
 * member takes its last value, as with JSON.parse. The whole line is checked against JSON's grammar
 * as JSON.parse checks it; a line that is not a JSON object, fails the check, has an escaped member
 * name, or nests deeper than MAX_DEPTH gives undefined, and the caller parses its text as before (so
 * its error, if any, is JSON.parse's own). The bytes must be valid UTF-8.
 *
 * Lines of one file mostly repeat their names in the same order, and many of their strings: each
 * object's names are remembered from the last one read (a name with the same bytes needs no scan and
 * no look-up), and each member's last short string (the same bytes give the same text undecoded).
 * Either is used only for bytes equal to those already checked, so what is accepted does not change.
 */

import { jsonSpecialBytes } from '../jsonl/json-word.js';

/** A member read as a whole value. */
const VALUE = 0;
/** A member whose object is followed member by member (any other value is read whole). */
const OBJECT = 1;
/** A member whose array's first item is followed (any other value is read whole). */
const FIRST = 2;

interface Member {
  /** Its place among its shape's members (and in `values`). */
  readonly index: number;
  readonly bytes: Uint8Array;
  readonly kind: typeof VALUE | typeof OBJECT | typeof FIRST;
  /** The members followed in an OBJECT value, or in a FIRST value's first item. */
  readonly shape: Shape | undefined;
  /** The last plain string read at this member (see readString). */
  readonly last: LastString;
}

/** A string's bytes (up to CACHED_BYTES) and its text. */
interface LastString {
  length: number;
  readonly bytes: Uint8Array;
  text: string;
}

/** Strings at most this long are kept per member to be given again (see readString). */
const CACHED_BYTES = 32;
/**
 * Names remembered per object, at most: result objects have a dozen, and an odd line with thousands
 * must not leave them all held.
 */
const SEEN_NAMES = 64;

/**
 * The members of an object that are read (the rest are skipped), and how the object is made from
 * their values, in order (undefined where absent: the parser reads an absent member and an
 * undefined one alike). Each shape names its members in code: a store by a computed name, member
 * after member, cost more than the whole scan.
 */
interface Shape {
  /** Members by the length of their name. */
  readonly byLength: ReadonlyArray<readonly Member[] | undefined>;
  readonly names: readonly string[];
  readonly build: (values: unknown[]) => Record<string, unknown>;
  /** The values of the object being read (a shape never holds itself, so one array serves). */
  readonly values: unknown[];
  /**
   * The names of the last object read, in order, each as its bytes from the opening quote to the
   * colon: the k-th name of the next one is most often the same, and is then told by comparing a few
   * words instead of scanning the name and looking it up.
   */
  readonly seen: Array<SeenName | undefined>;
}

/** A name as it was met: `"name":` (at least four bytes), as int32 words, and the member it is. */
interface SeenName {
  readonly length: number;
  /** The words at 0, 4, 8, ... before `length - 4`, then the word at `length - 4` (they may overlap). */
  readonly words: Int32Array;
  readonly member: Member | undefined;
}

type Spec = Shape | { first: Shape } | typeof VALUE;

function shape(members: Record<string, Spec>, build: (v: unknown[]) => Record<string, unknown>): Shape {
  const byLength: Member[][] = [];
  for (const [index, [name, spec]] of Object.entries(members).entries()) {
    const bytes = Buffer.from(name, 'latin1');
    const last: LastString = { length: -1, bytes: new Uint8Array(CACHED_BYTES), text: '' };
    const member: Member =
      spec === VALUE
        ? { index, bytes, kind: VALUE, shape: undefined, last }
        : 'first' in spec
          ? { index, bytes, kind: FIRST, shape: spec.first, last }
          : { index, bytes, kind: OBJECT, shape: spec, last };
    const same = byLength[bytes.length] ?? [];
    same.push(member);
    byLength[bytes.length] = same;
  }
  const names = Object.keys(members);
  return { byLength, names, build, values: new Array<unknown>(names.length).fill(undefined), seen: [] };
}

// What ResultParser reads of a line (result-parser.ts: fromValue and the functions it calls). The
// builders list the members in the order of their shape (a test checks each against its names).
const DETAILS = shape({ reasoning_tokens: VALUE }, (v) => ({ reasoning_tokens: v[0] }));
const USAGE = shape(
  {
    prompt_tokens: VALUE,
    completion_tokens: VALUE,
    input_tokens: VALUE,
    output_tokens: VALUE,
    reasoning_tokens: VALUE,
    completion_tokens_details: DETAILS,
    output_tokens_details: DETAILS,
  },
  (v) => ({
    prompt_tokens: v[0],
    completion_tokens: v[1],
    input_tokens: v[2],
    output_tokens: v[3],
    reasoning_tokens: v[4],
    completion_tokens_details: v[5],
    output_tokens_details: v[6],
  }),
);
const MESSAGE = shape(
  { content: VALUE, reasoning_content: VALUE, reasoning: VALUE, refusal: VALUE },
  (v) => ({ content: v[0], reasoning_content: v[1], reasoning: v[2], refusal: v[3] }),
);
const CHOICE = shape({ finish_reason: VALUE, text: VALUE, message: MESSAGE }, (v) => ({
  finish_reason: v[0],
  text: v[1],
  message: v[2],
}));
const BODY = shape(
  {
    request_id: VALUE,
    model: VALUE,
    usage: USAGE,
    error: VALUE,
    code: VALUE,
    message: VALUE,
    choices: { first: CHOICE },
    data: VALUE,
    output: VALUE,
    status: VALUE,
    incomplete_details: VALUE,
  },
  (v) => ({
    request_id: v[0],
    model: v[1],
    usage: v[2],
    error: v[3],
    code: v[4],
    message: v[5],
    choices: v[6],
    data: v[7],
    output: v[8],
    status: v[9],
    incomplete_details: v[10],
  }),
);
const RESPONSE = shape({ status_code: VALUE, request_id: VALUE, body: BODY }, (v) => ({
  status_code: v[0],
  request_id: v[1],
  body: v[2],
}));
const LINE = shape({ custom_id: VALUE, cached: VALUE, error: VALUE, response: RESPONSE }, (v) => ({
  custom_id: v[0],
  cached: v[1],
  error: v[2],
  response: v[3],
}));

/** Every shape, for the test that checks each builder against its member names. */
export const SHAPES: readonly Shape[] = [LINE, RESPONSE, BODY, USAGE, DETAILS, CHOICE, MESSAGE];

/** Deeper lines are left to JSON.parse (this reader recurses; JSON.parse does not). */
const MAX_DEPTH = 256;
/** Digits of an integer read exactly without Number(). */
const SAFE_DIGITS = 15;
/** What the reading functions return instead of a position when the line must go to JSON.parse. */
const GIVE_UP = -1;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
/** JSON's whitespace is four bytes, all at or below this. */
const SPACE = 0x20;

// The grammar functions below (skipValue ... skipDigits) are those of core/jsonl/json-line-scan.ts
// with other flags, on purpose in each module: shared, both scanners were 13-18% slower.
// The line being read, and what the last call found: module state, so that the functions below
// pass only positions (each returns where it stopped, or GIVE_UP) and allocate nothing of their own.
let bytes: Buffer = Buffer.alloc(0);
let view = new DataView(bytes.buffer);
let end = 0;
/** Set by skipString: the string held a backslash escape / a byte above 0x7f. */
let escaped = false;
let wide = false;
/** Set by readValue and readObject: the value read. */
let value: unknown;

/**
 * The members ResultParser reads of the result line `buffer[start, stop)` (a JSON object), as
 * JSON.parse would give them; undefined when the line must be parsed whole (see the file comment).
 */
export function scanResultLine(
  buffer: Buffer,
  start: number,
  stop: number,
): Record<string, unknown> | undefined {
  if (buffer !== bytes) {
    bytes = buffer;
    view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }
  end = stop;
  try {
    let i = skipSpace(start);
    if (i >= stop || buffer[i] !== OPEN_BRACE) return undefined;
    i = readObject(i, LINE, 1);
    if (i === GIVE_UP || skipSpace(i) !== stop) return undefined;
    return value as Record<string, unknown>;
  } finally {
    value = undefined;
  }
}

function skipSpace(i: number): number {
  const b = bytes;
  const e = end;
  while (i < e) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
  return i;
}

/** `{` at `i`: the followed members of the object into `value`, the rest checked and skipped. */
function readObject(i: number, shape: Shape, depth: number): number {
  if (depth > MAX_DEPTH) return GIVE_UP;
  const b = bytes;
  const e = end;
  const values = shape.values;
  values.fill(undefined);
  i++;
  if (i < e && b[i]! <= SPACE) i = skipSpace(i);
  if (i < e && b[i] === CLOSE_BRACE) {
    value = shape.build(values);
    return i + 1;
  }
  const seen = shape.seen;
  for (let k = 0; ; k++) {
    if (i >= e || b[i] !== QUOTE) return GIVE_UP;
    const guess = seen[k];
    let member: Member | undefined;
    if (guess !== undefined && sameName(i, guess)) {
      // The same bytes as a name already checked: a plain string and its colon.
      member = guess.member;
      i += guess.length;
    } else {
      const nameStart = i;
      i = skipString(i);
      // An escaped name may spell a member read here: JSON.parse reads those lines.
      if (i === GIVE_UP || escaped) return GIVE_UP;
      member = find(shape, nameStart + 1, i - 1);
      if (i < e && b[i] === COLON && i + 1 - nameStart >= 4 && k < SEEN_NAMES)
        seen[k] = learnName(nameStart, i + 1, member);
      if (i < e && b[i]! <= SPACE) i = skipSpace(i);
      if (i >= e || b[i] !== COLON) return GIVE_UP;
      i++;
    }
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
    if (member === undefined) i = skipValue(i, depth);
    else {
      i = readMember(i, member, depth);
      // The last of repeated members wins, as with JSON.parse.
      values[member.index] = value;
    }
    if (i === GIVE_UP) return GIVE_UP;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
    if (i >= e) return GIVE_UP;
    const c = b[i++];
    if (c === CLOSE_BRACE) {
      value = shape.build(values);
      return i;
    }
    if (c !== COMMA) return GIVE_UP;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
  }
}

function readMember(i: number, member: Member, depth: number): number {
  const c = i < end ? bytes[i] : -1;
  if (member.kind === OBJECT && c === OPEN_BRACE) return readObject(i, member.shape!, depth + 1);
  if (member.kind === FIRST && c === OPEN_BRACKET) return readFirst(i, member.shape!, depth + 1);
  if (c === QUOTE) return readString(i, member.last);
  return readValue(i, depth);
}

/**
 * `"` at `i`: the string into `value`. A member's last plain string is kept and given again when the
 * same bytes come (a model, a finish reason, a label: most lines repeat them), which costs less
 * than decoding them.
 */
function readString(i: number, last: LastString): number {
  const b = bytes;
  const start = i;
  i = skipString(i);
  if (i === GIVE_UP) return GIVE_UP;
  const from = start + 1;
  const length = i - 1 - from;
  if (escaped || length > CACHED_BYTES) {
    value = stringText(start, i);
    return i;
  }
  const kept = last.bytes;
  if (length === last.length) {
    let k = 0;
    while (k < length && kept[k] === b[from + k]) k++;
    if (k === length) {
      value = last.text;
      return i;
    }
  }
  const text = wide ? b.toString('utf8', from, i - 1) : shortText(from, length);
  for (let k = 0; k < length; k++) kept[k] = b[from + k]!;
  last.length = length;
  last.text = text;
  value = text;
  return i;
}

/** `[` at `i`: into `value`, an array of only its first item, followed as `shape` when an object. */
function readFirst(i: number, shape: Shape, depth: number): number {
  if (depth > MAX_DEPTH) return GIVE_UP;
  const b = bytes;
  const e = end;
  i = skipSpace(i + 1);
  if (i < e && b[i] === CLOSE_BRACKET) {
    value = [];
    return i + 1;
  }
  i = i < e && b[i] === OPEN_BRACE ? readObject(i, shape, depth + 1) : readValue(i, depth);
  if (i === GIVE_UP) return GIVE_UP;
  const first = [value];
  for (;;) {
    i = skipSpace(i);
    if (i >= e) return GIVE_UP;
    const c = b[i++];
    if (c === CLOSE_BRACKET) {
      value = first;
      return i;
    }
    if (c !== COMMA) return GIVE_UP;
    i = skipValue(skipSpace(i), depth + 1);
    if (i === GIVE_UP) return GIVE_UP;
  }
}

/** A whole value at `i` into `value`, as JSON.parse gives it. */
function readValue(i: number, depth: number): number {
  if (i >= end) return GIVE_UP;
  const b = bytes;
  const c = b[i]!;
  const start = i;
  if (c === QUOTE) {
    i = skipString(i);
    if (i === GIVE_UP) return GIVE_UP;
    value = stringText(start, i);
    return i;
  }
  if (c === MINUS || (c >= ZERO && c <= NINE)) return readNumber(i);
  if (c === OPEN_BRACE || c === OPEN_BRACKET) {
    i = skipValue(i, depth);
    if (i !== GIVE_UP) value = JSON.parse(b.toString('utf8', start, i));
    return i;
  }
  return readLiteral(i);
}

/** The text of the string `bytes[start, stop)` (its quotes included) skipString just read. */
function stringText(start: number, stop: number): string {
  return escaped
    ? JSON.parse(bytes.toString('utf8', start, stop))
    : bytes.toString(wide ? 'utf8' : 'latin1', start + 1, stop - 1);
}

const char = String.fromCharCode;

/**
 * The text of `length` one-byte characters at `i`: an id or a request id of up to twelve by one call
 * of String.fromCharCode (about a third of toString's cost on so short a string).
 */
function shortText(i: number, length: number): string {
  const b = bytes;
  switch (length) {
    case 0:
      return '';
    case 1:
      return char(b[i]!);
    case 2:
      return char(b[i]!, b[i + 1]!);
    case 3:
      return char(b[i]!, b[i + 1]!, b[i + 2]!);
    case 4:
      return char(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!);
    case 5:
      return char(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!);
    case 6:
      return char(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!, b[i + 5]!);
    case 7:
      return char(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!, b[i + 5]!, b[i + 6]!);
    case 8:
      return char(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!, b[i + 5]!, b[i + 6]!, b[i + 7]!);
    case 9:
      return char(
        b[i]!,
        b[i + 1]!,
        b[i + 2]!,
        b[i + 3]!,
        b[i + 4]!,
        b[i + 5]!,
        b[i + 6]!,
        b[i + 7]!,
        b[i + 8]!,
      );
    case 10:
      return char(
        b[i]!,
        b[i + 1]!,
        b[i + 2]!,
        b[i + 3]!,
        b[i + 4]!,
        b[i + 5]!,
        b[i + 6]!,
        b[i + 7]!,
        b[i + 8]!,
        b[i + 9]!,
      );
    case 11:
      return char(
        b[i]!,
        b[i + 1]!,
        b[i + 2]!,
        b[i + 3]!,
        b[i + 4]!,
        b[i + 5]!,
        b[i + 6]!,
        b[i + 7]!,
        b[i + 8]!,
        b[i + 9]!,
        b[i + 10]!,
      );
    case 12:
      return char(
        b[i]!,
        b[i + 1]!,
        b[i + 2]!,
        b[i + 3]!,
        b[i + 4]!,
        b[i + 5]!,
        b[i + 6]!,
        b[i + 7]!,
        b[i + 8]!,
        b[i + 9]!,
        b[i + 10]!,
        b[i + 11]!,
      );
    default:
      return b.toString('latin1', i, i + length);
  }
}

/** Checks and skips any value. */
function skipValue(i: number, depth: number): number {
  if (i >= end) return GIVE_UP;
  const c = bytes[i]!;
  if (c === QUOTE) return skipString(i);
  if (c === OPEN_BRACE) return skipObject(i, depth + 1);
  if (c === OPEN_BRACKET) return skipArray(i, depth + 1);
  if (c === MINUS || (c >= ZERO && c <= NINE)) return skipNumber(i);
  return readLiteral(i);
}

function skipObject(i: number, depth: number): number {
  if (depth > MAX_DEPTH) return GIVE_UP;
  const b = bytes;
  const e = end;
  i = skipSpace(i + 1);
  if (i < e && b[i] === CLOSE_BRACE) return i + 1;
  for (;;) {
    if (i >= e || b[i] !== QUOTE) return GIVE_UP;
    i = skipString(i);
    if (i === GIVE_UP) return GIVE_UP;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
    if (i >= e || b[i] !== COLON) return GIVE_UP;
    i++;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
    i = skipValue(i, depth);
    if (i === GIVE_UP) return GIVE_UP;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
    if (i >= e) return GIVE_UP;
    const c = b[i++];
    if (c === CLOSE_BRACE) return i;
    if (c !== COMMA) return GIVE_UP;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
  }
}

function skipArray(i: number, depth: number): number {
  if (depth > MAX_DEPTH) return GIVE_UP;
  const b = bytes;
  const e = end;
  i = skipSpace(i + 1);
  if (i < e && b[i] === CLOSE_BRACKET) return i + 1;
  for (;;) {
    i = skipValue(i, depth);
    if (i === GIVE_UP) return GIVE_UP;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
    if (i >= e) return GIVE_UP;
    const c = b[i++];
    if (c === CLOSE_BRACKET) return i;
    if (c !== COMMA) return GIVE_UP;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
  }
}

/**
 * `"` at `i`: where the string ends (after its closing quote); sets `escaped` and `wide`. Checks
 * its escapes, and that it holds no control character.
 */
function skipString(i: number): number {
  const b = bytes;
  const v = view;
  const e = end;
  let high = 0;
  let esc = false;
  i++;
  for (;;) {
    // Four bytes a step while none is a quote, a backslash or a control byte (an answer's text can be
    // thousands of bytes); `high` gathers their top bits.
    for (const last = e - 3; i < last; i += 4) {
      const w = v.getInt32(i, true);
      if (jsonSpecialBytes(w)) break;
      high |= w;
    }
    if (i >= e) return GIVE_UP;
    const c = b[i++]!;
    if (c === QUOTE) break;
    if (c === BACKSLASH) {
      esc = true;
      if (i >= e) return GIVE_UP;
      const x = b[i++]!;
      if (x === 0x75) {
        // \uXXXX
        if (i + 4 > e) return GIVE_UP;
        for (let k = 0; k < 4; k++) if (!isHex(b[i++]!)) return GIVE_UP;
      } else if (
        x !== QUOTE &&
        x !== BACKSLASH &&
        x !== 0x2f &&
        x !== 0x62 &&
        x !== 0x66 &&
        x !== 0x6e &&
        x !== 0x72 &&
        x !== 0x74
      )
        return GIVE_UP;
    } else if (c < SPACE) return GIVE_UP;
    else high |= c;
  }
  escaped = esc;
  wide = (high & 0x80808080) !== 0;
  return i;
}

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Skips a number, checked against JSON's grammar. */
function skipNumber(i: number): number {
  const b = bytes;
  const e = end;
  if (b[i] === MINUS) i++;
  if (i >= e) return GIVE_UP;
  const lead = b[i]!;
  if (lead === ZERO) i++;
  else if (lead > ZERO && lead <= NINE) i = skipDigits(i);
  else return GIVE_UP;
  if (i < e && b[i] === DOT) {
    const from = ++i;
    i = skipDigits(i);
    if (i === from) return GIVE_UP;
  }
  if (i < e && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < e && (b[i] === PLUS || b[i] === MINUS)) i++;
    const from = i;
    i = skipDigits(i);
    if (i === from) return GIVE_UP;
  }
  return i;
}

function skipDigits(i: number): number {
  const b = bytes;
  const e = end;
  while (i < e) {
    const c = b[i]!;
    if (c < ZERO || c > NINE) break;
    i++;
  }
  return i;
}

/** A number into `value`: a plain integer of up to SAFE_DIGITS digits summed here, others by Number(). */
function readNumber(start: number): number {
  const i = skipNumber(start);
  if (i === GIVE_UP) return GIVE_UP;
  const b = bytes;
  const negative = b[start] === MINUS;
  let n = 0;
  let k = negative ? start + 1 : start;
  if (i - k <= SAFE_DIGITS) {
    for (; k < i; k++) {
      const c = b[k]!;
      if (c < ZERO || c > NINE) break;
      n = n * 10 + (c - ZERO);
    }
  }
  // A fraction, an exponent or a long integer: Number() reads the text as JSON.parse does.
  value = k === i ? (negative ? -n : n) : Number(b.toString('latin1', start, i));
  return i;
}

function readLiteral(i: number): number {
  const b = bytes;
  const c = b[i];
  if (c === 0x74 && i + 4 <= end && b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65) {
    value = true;
    return i + 4;
  }
  if (
    c === 0x66 &&
    i + 5 <= end &&
    b[i + 1] === 0x61 &&
    b[i + 2] === 0x6c &&
    b[i + 3] === 0x73 &&
    b[i + 4] === 0x65
  ) {
    value = false;
    return i + 5;
  }
  if (c === 0x6e && i + 4 <= end && b[i + 1] === 0x75 && b[i + 2] === 0x6c && b[i + 3] === 0x6c) {
    value = null;
    return i + 4;
  }
  return GIVE_UP;
}

/** Whether the bytes at `i` are those of `name` (its words, compared four bytes at a time). */
function sameName(i: number, name: SeenName): boolean {
  const length = name.length;
  if (i + length > end) return false;
  const v = view;
  const words = name.words;
  const last = words.length - 1;
  for (let w = 0; w < last; w++) if (v.getInt32(i + 4 * w, true) !== words[w]) return false;
  return v.getInt32(i + length - 4, true) === words[last];
}

/** The name `bytes[from, to)` (`"name":`, at least four bytes) as sameName compares it. */
function learnName(from: number, to: number, member: Member | undefined): SeenName {
  const length = to - from;
  const words = new Int32Array(Math.ceil(length / 4));
  for (let w = 0; w < words.length - 1; w++) words[w] = view.getInt32(from + 4 * w, true);
  words[words.length - 1] = view.getInt32(to - 4, true);
  return { length, words, member };
}

/** The member of `shape` named by bytes [from, to) (no escapes), if it is read. */
function find(shape: Shape, from: number, to: number): Member | undefined {
  const candidates = shape.byLength[to - from];
  if (candidates === undefined) return undefined;
  const b = bytes;
  for (let m = 0; m < candidates.length; m++) {
    const name = candidates[m]!.bytes;
    let k = 0;
    while (k < name.length && b[from + k] === name[k]) k++;
    if (k === name.length) return candidates[m];
  }
  return undefined;
}
