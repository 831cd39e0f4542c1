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
 * Deepest nesting of arrays and objects accepted inside a value. JSON.parse
 * takes any depth, but JSON.stringify in Node.js 20 overflows the stack
 * at a few thousand levels, so deeper values could never be stored.
 */
export const maxJsonDepth = 512;

interface JsonTextProblem {
  /** Path segments from the problem up to the root, innermost first. */
  reversedPath: string[];
  description: string;
}

function findProblem(
  value: unknown,
  depth: number,
): JsonTextProblem | undefined {
  if (typeof value === "string") {
    if (value.isWellFormed()) return undefined;
    return { reversedPath: [], description: "contains a lone surrogate" };
  }
  if (typeof value === "number") {
    if (Number.isFinite(value)) return undefined;
    return {
      reversedPath: [],
      description: "is a number too large for a 64-bit float",
    };
  }
  if (value === null || typeof value !== "object") return undefined;
  if (depth > maxJsonDepth) {
    return {
      reversedPath: [],
      description: `nests arrays and objects deeper than ${maxJsonDepth} levels`,
    };
  }

  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const problem = findProblem(value[index], depth + 1);
      if (problem) {
        problem.reversedPath.push(`[${index}]`);
        return problem;
      }
    }
    return undefined;
  }
  for (const member of Object.keys(value)) {
    if (!member.isWellFormed()) {
      return {
        reversedPath: [],
        description: "has a member name with a lone surrogate",
      };
    }
    const problem = findProblem(
      (value as Record<string, unknown>)[member],
      depth + 1,
    );
    if (problem) {
      problem.reversedPath.push(`.${member}`);
      return problem;
    }
  }
  return undefined;
}

/**
 * Finds the first string in a JSON value (object members included) that is
 * not valid Unicode, the first number that overflowed to Infinity while
 * parsing, or nesting deeper than maxJsonDepth. Returns a short description
 * of the problem, or undefined.
 *
 * JSON.parse turns `"\ud800"` into a lone surrogate and `1e400` into
 * Infinity without complaint, so both are caught here, after parsing. The
 * path is built only on failure, to keep the common case cheap.
 */
export function findInvalidJsonText(
  value: unknown,
  path: string,
): string | undefined {
  const problem = findProblem(value, 0);
  if (!problem) return undefined;
  let where = path + problem.reversedPath.reverse().join("");
  if (where.length > 120) where = `${where.slice(0, 117)}...`;
  return `${where} ${problem.description}`;
}
