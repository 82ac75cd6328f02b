const SIXTEEN_DIGITS = /\d{16}/;

/**
 * JSON.parse that keeps integers beyond 2^53 exact by reading them as strings (ids such as
 * 12345678901234567890 would otherwise come back as 12345678901234567000). Lines without a run of 16
 * digits, nearly all of them, take the plain JSON.parse path.
 */
export function parseJsonExact(text: string): { value: unknown; bigIntegers: boolean } {
  if (!SIXTEEN_DIGITS.test(text)) return { value: JSON.parse(text), bigIntegers: false };
  const quoted = quoteBigIntegers(text);
  return { value: JSON.parse(quoted), bigIntegers: quoted !== text };
}

function quoteBigIntegers(text: string): string {
  let out = '';
  let copied = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      i++;
      continue;
    }
    if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      i++;
      let integer = true;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d >= 0x30 && d <= 0x39) i++;
        else if (d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) {
          integer = false;
          i++;
        } else break;
      }
      const token = text.slice(start, i);
      if (integer && token.length >= 16 && !Number.isSafeInteger(Number(token))) {
        out += `${text.slice(copied, start)}"${token}"`;
        copied = i;
      }
      continue;
    }
    i++;
  }
  return copied === 0 ? text : out + text.slice(copied);
}
