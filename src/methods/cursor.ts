import { invalidParams } from "../protocol/errors.js";

/**
 * Page cursors are opaque to clients: base64url of a small JSON array that
 * names the listing they belong to and the last item returned. A cursor
 * marks a position in key order, not a snapshot.
 */
export function encodeCursor(parts: string[]): string {
  return Buffer.from(JSON.stringify(parts)).toString("base64url");
}

/**
 * Decodes a cursor and checks that it was made for the same listing
 * (`expected` are its leading parts). Returns the position it marks.
 */
export function decodeCursor(cursor: string, expected: string[]): string {
  let parts: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error("not base64url");
    parts = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalidCursor();
  }
  if (
    !Array.isArray(parts) ||
    parts.length !== expected.length + 1 ||
    !parts.every((part) => typeof part === "string")
  ) {
    throw invalidCursor();
  }
  for (let index = 0; index < expected.length; index++) {
    if (parts[index] !== expected[index]) throw invalidCursor();
  }
  return parts[expected.length] as string;
}

function invalidCursor() {
  return invalidParams(
    "Invalid cursor: pass back nextCursor unchanged, with the same namespace (and prefix) as the call that returned it, or null to start over.",
  );
}
