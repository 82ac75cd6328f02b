/**
 * The parts of a request line the estimate reads, found in its bytes without parsing the whole line:
 * the body's messages (role, name, text content) and the scalars that bound an answer (max_tokens,
 * max_completion_tokens, n, enable_thinking, thinking_budget). Only those strings are decoded, and a
 * text that repeats from line to line (a system prompt) is decoded once. With a fast tokenizer
 * (o200k counts ~6M tokens a second), decoding and parsing each whole line took a quarter of the time.
 *
 * Anything else a line may hold the scanner leaves to JSON.parse of the whole line, which then gives
 * the body as before: content as an array of parts (images), a `response_format`, an embeddings
 * `input`, a value out of place, bytes that are not JSON. So the figures are the same either way
 * (test/cost/request-scan.test.ts checks the two agree on generated and odd lines).
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
/** What the character after a backslash stands for (JSON's escapes but \u). */
const UNESCAPED: Array<string | undefined> = [];
for (const [c, text] of Object.entries({
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
}))
  UNESCAPED[c.charCodeAt(0)] = text;

const key = (name: string) => Buffer.from(name, 'latin1');
const BODY = key('body');
const MESSAGES = key('messages');
const ROLE = key('role');
const CONTENT = key('content');
const NAME = key('name');
/** Numbers the estimate reads from the body. */
const NUMBERS = ['max_tokens', 'max_completion_tokens', 'n', 'thinking_budget'].map(key);
const ENABLE_THINKING = key('enable_thinking');
/** Body fields the scanner does not read itself: their lines go to JSON.parse. */
const LEFT_TO_PARSE = ['response_format', 'input'].map(key);

/** Thrown inside the scanner when a line is not of the shape it reads; never leaves it. */
const UNUSUAL = Symbol('unusual');

/**
 * A JSON string's content with its escapes undone, as JSON.parse gives it: the text between escapes
 * kept (slices of the decoded span), each escape's character put in between. Decoding the span once
 * and undoing its few escapes here costs a third of what decoding it and then JSON.parse did.
 */
function unescaped(span: string): string {
  let text = '';
  let start = 0;
  for (let p = span.indexOf('\\'); p !== -1; p = span.indexOf('\\', start)) {
    const c = span.charCodeAt(p + 1);
    if (c === 0x75 /* u */) {
      // Four hex digits: one UTF-16 code unit (a lone surrogate stays one, as in JSON.parse).
      const hex = span.slice(p + 2, p + 6);
      if (!HEX4.test(hex)) throw UNUSUAL;
      text += span.slice(start, p) + String.fromCharCode(Number.parseInt(hex, 16));
      start = p + 6;
    } else {
      const char = UNESCAPED[c];
      if (char === undefined) throw UNUSUAL;
      text += span.slice(start, p) + char;
      start = p + 2;
    }
  }
  return start === 0 ? span : text + span.slice(start);
}
const HEX4 = /^[0-9a-fA-F]{4}$/;

/** Roles handed out as constants rather than decoded each line. */
const ROLES = ['system', 'user', 'assistant', 'developer', 'tool'].map((role) => [key(role), role] as const);
const LITERALS: ReadonlyArray<readonly [Buffer, boolean | null]> = [
  [key('true'), true],
  [key('false'), false],
  [key('null'), null],
];
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/** What a line's body holds for the estimate: the same values JSON.parse gives for those fields. */
export type ScannedBody = Record<string, unknown>;

/**
 * Reads request lines one after another. Keeps the last text decoded for each role other than `user`,
 * to hand out the same string while the next lines' bytes are the same. Written for speed: no closure
 * or native call per key (a key is told from its bytes in a loop), strings decoded only where read.
 */
export class RequestScanner {
  #line: Buffer = Buffer.alloc(0);
  #pos = 0;
  /** The first backslash at or after where the scan last looked for one (the line's length: none). */
  #slash = -1;
  /** The content of the last string passed: from, to. */
  #from = 0;
  #to = 0;
  /** Lines the scanner read itself, and lines it left to JSON.parse. */
  scanned = 0;
  parsed = 0;
  readonly #repeated = new Map<string, { bytes: Buffer; text: string }>();

  /** The body of request line `line` (no newline), as far as the estimate reads it. */
  body(line: Buffer): ScannedBody {
    try {
      const body = this.#request(line);
      this.scanned++;
      return body;
    } catch (error) {
      if (error !== UNUSUAL) throw error;
    }
    this.parsed++;
    const request = JSON.parse(line.toString('utf8')) as { body?: unknown } | null;
    const body = request?.body;
    return body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as ScannedBody) : {};
  }

  #request(line: Buffer): ScannedBody {
    this.#line = line;
    this.#pos = 0;
    this.#slash = -1;
    this.#space();
    let body: ScannedBody = {};
    for (let more = this.#open(); more; more = this.#next()) {
      if (this.#is(BODY)) body = this.#body();
      else this.#skipValue();
    }
    this.#space();
    if (this.#pos !== line.length) throw UNUSUAL;
    return body;
  }

  #body(): ScannedBody {
    const body: ScannedBody = {};
    for (let more = this.#open(); more; more = this.#next()) {
      if (this.#is(MESSAGES)) body.messages = this.#messages();
      else if (this.#is(ENABLE_THINKING)) body.enable_thinking = this.#literal();
      else if (this.#isAny(LEFT_TO_PARSE)) throw UNUSUAL;
      else {
        const number = this.#isAny(NUMBERS);
        if (number) body[number.toString('latin1')] = this.#scalar();
        else this.#skipValue();
      }
    }
    return body;
  }

  #messages(): unknown[] {
    const line = this.#line;
    const messages: unknown[] = [];
    if (line[this.#pos] !== OPEN_BRACKET) throw UNUSUAL;
    this.#pos++;
    this.#space();
    if (line[this.#pos] === CLOSE_BRACKET) {
      this.#pos++;
      return messages;
    }
    for (;;) {
      messages.push(this.#message());
      this.#space();
      const c = line[this.#pos++];
      if (c === CLOSE_BRACKET) return messages;
      if (c !== COMMA) throw UNUSUAL;
      this.#space();
    }
  }

  #message(): Record<string, unknown> {
    const message: Record<string, unknown> = {};
    let from = -1;
    let to = -1;
    let escaped = false;
    for (let more = this.#open(); more; more = this.#next()) {
      if (this.#is(ROLE)) message.role = this.#role();
      else if (this.#is(CONTENT)) {
        // Text content only; parts (text and images) go to JSON.parse.
        if (this.#line[this.#pos] !== QUOTE) throw UNUSUAL;
        escaped = this.#string();
        from = this.#from;
        to = this.#to;
      } else if (this.#is(NAME)) message.name = this.#stringValue();
      else this.#skipValue();
    }
    // Decoded once the role is known: a role's repeated text is decoded once.
    if (from >= 0) message.content = this.#text(from, to, escaped, message.role);
    return message;
  }

  /** A role: the constant for a known one, else decoded. */
  #role(): unknown {
    if (this.#line[this.#pos] !== QUOTE) return this.#scalar();
    const escaped = this.#string();
    if (!escaped) for (const [bytes, role] of ROLES) if (this.#is(bytes)) return role;
    return this.#decode(this.#from, this.#to, escaped);
  }

  /** The text of a string span; for roles other than `user`, the last such text when the bytes repeat. */
  #text(from: number, to: number, escaped: boolean, role: unknown): string {
    if (role === 'user' || typeof role !== 'string') return this.#decode(from, to, escaped);
    const last = this.#repeated.get(role);
    const line = this.#line;
    if (
      last &&
      last.bytes.length === to - from &&
      line.compare(last.bytes, 0, last.bytes.length, from, to) === 0
    )
      return last.text;
    const text = this.#decode(from, to, escaped);
    this.#repeated.set(role, { bytes: Buffer.from(line.subarray(from, to)), text });
    return text;
  }

  #decode(from: number, to: number, escaped: boolean): string {
    const text = this.#line.toString('utf8', from, to);
    return escaped ? unescaped(text) : text;
  }

  #stringValue(): unknown {
    if (this.#line[this.#pos] !== QUOTE) return this.#scalar();
    const escaped = this.#string();
    return this.#decode(this.#from, this.#to, escaped);
  }

  /**
   * Opens the object at the position and passes its first key, positioned at its value; false when
   * the object is empty (and passed).
   */
  #open(): boolean {
    if (this.#line[this.#pos] !== OPEN_BRACE) throw UNUSUAL;
    this.#pos++;
    this.#space();
    if (this.#line[this.#pos] === CLOSE_BRACE) {
      this.#pos++;
      return false;
    }
    this.#key();
    return true;
  }

  /** After a value: passes the next key, or the object's end (false). */
  #next(): boolean {
    this.#space();
    const c = this.#line[this.#pos++];
    if (c === CLOSE_BRACE) return false;
    if (c !== COMMA) throw UNUSUAL;
    this.#space();
    this.#key();
    return true;
  }

  /** Passes a key and its colon: the key's span in #from, #to. */
  #key(): void {
    if (this.#line[this.#pos] !== QUOTE) throw UNUSUAL;
    // A key with escapes may spell a field another way: not read here.
    if (this.#string()) throw UNUSUAL;
    this.#space();
    if (this.#line[this.#pos++] !== COLON) throw UNUSUAL;
    this.#space();
  }

  /** Passes the string at the position (at its quote), its content's span in #from, #to; true when it holds escapes. */
  #string(): boolean {
    const line = this.#line;
    const from = this.#pos + 1;
    let quote = line.indexOf(QUOTE, from);
    if (quote === -1) throw UNUSUAL;
    this.#from = from;
    // Where the next backslash is, found once for the rest of the line rather than once a string.
    if (this.#slash < from) {
      this.#slash = line.indexOf(BACKSLASH, from);
      if (this.#slash === -1) this.#slash = line.length;
    }
    const escaped = this.#slash < quote;
    // Escapes: the string ends at the first quote after an even run of backslashes (found natively,
    // not byte by byte: a text's escapes are few and far between).
    if (escaped)
      for (;;) {
        let p = quote - 1;
        while (line[p] === BACKSLASH) p--;
        if ((quote - p) % 2 === 1) break;
        quote = line.indexOf(QUOTE, quote + 1);
        if (quote === -1) throw UNUSUAL;
      }
    this.#pos = quote + 1;
    this.#to = quote;
    return escaped;
  }

  /** true, false or null. */
  #literal(): boolean | null {
    const line = this.#line;
    for (const [bytes, value] of LITERALS) {
      let i = 0;
      while (i < bytes.length && line[this.#pos + i] === bytes[i]) i++;
      if (i === bytes.length) {
        this.#pos += i;
        return value;
      }
    }
    throw UNUSUAL;
  }

  /** A number or literal, as JSON.parse reads it; anything else is left to JSON.parse. */
  #scalar(): number | boolean | null {
    const line = this.#line;
    const c = line[this.#pos];
    if (c !== 0x2d && (c === undefined || c < 0x30 || c > 0x39)) return this.#literal();
    const from = this.#pos;
    const to = this.#numberEnd();
    const text = line.toString('latin1', from, to);
    if (!JSON_NUMBER.test(text)) throw UNUSUAL;
    this.#pos = to;
    return Number(text);
  }

  #numberEnd(): number {
    const line = this.#line;
    let p = this.#pos + 1;
    for (;;) {
      const c = line[p];
      if (
        c === undefined ||
        !((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45)
      )
        return p;
      p++;
    }
  }

  /** Passes a value of any kind. */
  #skipValue(): void {
    const line = this.#line;
    const c = line[this.#pos];
    if (c === QUOTE) this.#string();
    else if (c === OPEN_BRACE) {
      for (let more = this.#open(); more; more = this.#next()) this.#skipValue();
    } else if (c === OPEN_BRACKET) {
      this.#pos++;
      this.#space();
      if (line[this.#pos] === CLOSE_BRACKET) {
        this.#pos++;
        return;
      }
      for (;;) {
        this.#skipValue();
        this.#space();
        const next = line[this.#pos++];
        if (next === CLOSE_BRACKET) return;
        if (next !== COMMA) throw UNUSUAL;
        this.#space();
      }
    } else if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) {
      // A number the estimate does not read: passed, not decoded (a malformed one leaves the rest of
      // the line out of place, and the line goes to JSON.parse).
      this.#pos = this.#numberEnd();
    } else this.#literal();
  }

  #space(): void {
    const line = this.#line;
    let p = this.#pos;
    for (;;) {
      const c = line[p];
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      p++;
    }
    this.#pos = p;
  }

  /** Whether the last string passed (#from, #to) is `name`: a loop, cheaper here than a native compare. */
  #is(name: Buffer): boolean {
    const from = this.#from;
    if (this.#to - from !== name.length) return false;
    const line = this.#line;
    for (let i = 0; i < name.length; i++) if (line[from + i] !== name[i]) return false;
    return true;
  }

  #isAny(names: readonly Buffer[]): Buffer | undefined {
    for (const name of names) if (this.#is(name)) return name;
    return undefined;
  }
}
