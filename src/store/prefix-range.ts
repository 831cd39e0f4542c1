/**
 * Returns the key range of every string that starts with `prefix`, as bounds that
 * are valid text: `from` <= key < `below`. `below` is the prefix with its
 * last code point replaced by the next one (surrogates are skipped, as
 * UTF-8 text has none), and is null when no string sorts after every
 * match. Byte order of UTF-8 equals code point order, so the bounds hold
 * under the "C" collation.
 */
export function prefixRange(prefix: string): {
  from: string;
  below: string | null;
} {
  const codePoints = [...prefix].map((char) => char.codePointAt(0)!);
  while (codePoints.length > 0) {
    const last = codePoints.pop()!;
    if (last === 0x10ffff) continue;
    const next = last === 0xd7ff ? 0xe000 : last + 1;
    return { from: prefix, below: String.fromCodePoint(...codePoints, next) };
  }
  return { from: prefix, below: null };
}
