import { notSerializable } from "./client-errors.js";
import type { KvError } from "./kv-error.js";

/**
 * Encodes a JSON-RPC request as the text of one WebSocket frame, or
 * returns a NotSerializable error when its params are not JSON.
 * JSON.stringify throws on a BigInt or a cycle but turns NaN and
 * ±Infinity into null, which would store a different value than the
 * caller passed, so those are rejected too.
 */
export function encodeRequest(
  id: number,
  method: string,
  params: object,
): string | KvError {
  try {
    return JSON.stringify(
      { jsonrpc: "2.0", id, method, params },
      rejectNonFiniteNumbers,
    );
  } catch (error) {
    return notSerializable(method, (error as Error).message, error);
  }
}

function rejectNonFiniteNumbers(this: unknown, key: string, value: unknown) {
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new TypeError(
      `${String(value)} at member '${key}' is not a JSON number`,
    );
  }
  return value;
}
