/**
 * Non-zero when any of the four bytes of `w` (a little-endian int32 read of a string's bytes) is one
 * JSON must escape or that ends a string: a quote, a backslash or a control byte (below 0x20). The
 * scanners and hashers read text four bytes a step while this is zero (bytes above 0x7f pass).
 */
export function jsonSpecialBytes(w: number): number {
  const quote = w ^ 0x22222222;
  const slash = w ^ 0x5c5c5c5c;
  return (
    (((w - 0x20202020) & ~w) | ((quote - 0x01010101) & ~quote) | ((slash - 0x01010101) & ~slash)) & 0x80808080
  );
}
