declare global {
  interface String {
    /** ES2024; present in Node.js 20 (V8 11.3) but not in the ES2023 lib. */
    isWellFormed(): boolean;
  }
}

/** Matches the control characters U+0000 to U+001F and U+007F. */
const controlCharacter = /[\u0000-\u001f\u007f]/;

export function hasControlCharacter(text: string): boolean {
  return controlCharacter.test(text);
}

export function utf8Length(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/**
 * Finds the first string in a JSON value (object members included) that is
 * not valid Unicode, or the first number that overflowed to Infinity while
 * parsing. Returns a short description of the problem, or undefined.
 *
 * JSON.parse turns `"\ud800"` into a lone surrogate and `1e400` into
 * Infinity without complaint, so both are caught here, after parsing.
 */
export function findInvalidJsonText(
  value: unknown,
  path: string,
): string | undefined {
  if (typeof value === "string") {
    return value.isWellFormed()
      ? undefined
      : `${path} contains a lone surrogate`;
  }
  if (typeof value === "number") {
    return Number.isFinite(value)
      ? undefined
      : `${path} is a number too large for a 64-bit float`;
  }
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const problem = findInvalidJsonText(value[index], `${path}[${index}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  if (value !== null && typeof value === "object") {
    for (const member of Object.keys(value)) {
      if (!member.isWellFormed()) {
        return `a member name inside ${path} contains a lone surrogate`;
      }
      const child = (value as Record<string, unknown>)[member];
      const problem = findInvalidJsonText(child, `${path}.${member}`);
      if (problem) return problem;
    }
  }
  return undefined;
}
