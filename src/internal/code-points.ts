/**
 * Characters (Unicode code points) in `text`, as a provider counts "characters": a surrogate pair
 * (an emoji, a rare CJK ideograph) is one, not two UTF-16 units, nor its 4 UTF-8 bytes. Stops counting
 * past `stopAfter`, so a long text costs no more than the limit it is checked against.
 */
export function codePointLength(text: string, stopAfter = Number.POSITIVE_INFINITY): number {
  // Code points never outnumber UTF-16 units, and a pair is two units: at most half can be pairs.
  if (text.length <= stopAfter) return countPoints(text, text.length);
  if (Math.ceil(text.length / 2) > stopAfter) return Math.ceil(text.length / 2);
  return countPoints(text, text.length);
}

function countPoints(text: string, units: number): number {
  let n = 0;
  for (let i = 0; i < units; i++) {
    const c = text.charCodeAt(i);
    // A high surrogate followed by a low one is one character; a lone surrogate counts as one.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < units) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Whether `text` has more than `max` characters (code points), without counting when plainly not. */
export function exceedsCodePoints(text: string, max: number): boolean {
  return text.length > max && codePointLength(text, max) > max;
}
