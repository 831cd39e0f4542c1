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

type Container = unknown[] | Record<string, unknown>;

/** One open array or object of an iterative walk. */
interface WalkFrame {
  container: Container;
  /** Member names of an object; null for an array. */
  members: string[] | null;
  /** The next position to visit. */
  next: number;
  /** How many elements or members the container has. */
  size: number;
}

function openFrame(container: Container): WalkFrame {
  const members = Array.isArray(container) ? null : Object.keys(container);
  const size = members ? members.length : (container as unknown[]).length;
  return { container, members, next: 0, size };
}

function scalarProblem(value: unknown): string | undefined {
  if (typeof value === "string" && !value.isWellFormed()) {
    return "contains a lone surrogate";
  }
  if (typeof value === "number" && !Number.isFinite(value)) {
    return "is a number too large for a 64-bit float";
  }
  return undefined;
}

/** Builds the path to the element that each open frame visited last. */
function pathOf(stack: WalkFrame[]): string {
  let path = "";
  for (const frame of stack) {
    const position = frame.next - 1;
    path += frame.members ? `.${frame.members[position]}` : `[${position}]`;
  }
  return path;
}

/**
 * Finds the first string in a JSON value (object members included) that is
 * not valid Unicode, or the first number that overflowed to Infinity while
 * parsing. Returns a short description of the problem, or undefined.
 *
 * JSON.parse turns `"\ud800"` into a lone surrogate and `1e400` into
 * Infinity without complaint, so both are caught here, after parsing. The
 * walk is iterative because a 64 KiB value may nest tens of thousands of
 * levels deep, past what recursion allows.
 */
export function findInvalidJsonText(
  value: unknown,
  path: string,
): string | undefined {
  const problem = scalarProblem(value);
  if (problem) return `${path} ${problem}`;
  if (value === null || typeof value !== "object") return undefined;

  const stack = [openFrame(value as Container)];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1];
    if (frame.next >= frame.size) {
      stack.pop();
      continue;
    }

    const position = frame.next++;
    let child: unknown;
    if (frame.members) {
      const member = frame.members[position];
      if (!member.isWellFormed()) {
        return `${shortenPath(path + pathOf(stack))} is a member name with a lone surrogate`;
      }
      child = (frame.container as Record<string, unknown>)[member];
    } else {
      child = (frame.container as unknown[])[position];
    }

    const childProblem = scalarProblem(child);
    if (childProblem) {
      return `${shortenPath(path + pathOf(stack))} ${childProblem}`;
    }
    if (child !== null && typeof child === "object") {
      stack.push(openFrame(child as Container));
    }
  }
  return undefined;
}

function shortenPath(path: string): string {
  return path.length > 120 ? `${path.slice(0, 117)}...` : path;
}

/**
 * Serialises a value parsed by JSON.parse exactly as JSON.stringify does,
 * but without recursion, for values nested too deeply for JSON.stringify
 * (which overflows the stack at a few thousand levels in Node.js 20).
 */
export function stringifyDeep(value: unknown): string {
  const parts: string[] = [];
  const stack: WalkFrame[] = [];

  const emit = (item: unknown) => {
    if (item === null || typeof item !== "object") {
      parts.push(JSON.stringify(item));
      return;
    }
    parts.push(Array.isArray(item) ? "[" : "{");
    stack.push(openFrame(item as Container));
  };

  emit(value);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1];
    if (frame.next >= frame.size) {
      parts.push(frame.members ? "}" : "]");
      stack.pop();
      continue;
    }

    const position = frame.next++;
    if (position > 0) parts.push(",");
    if (frame.members) {
      const member = frame.members[position];
      parts.push(`${JSON.stringify(member)}:`);
      emit((frame.container as Record<string, unknown>)[member]);
    } else {
      emit((frame.container as unknown[])[position]);
    }
  }
  return parts.join("");
}
