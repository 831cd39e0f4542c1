import { ErrorCode, RpcError } from "./errors.js";

export const maxBatchEntries = 1000;

export type RequestId = string | number | null;

/** A well-formed JSON-RPC request or notification. */
export interface Request {
  valid: true;
  /** Absent for a notification, which is executed but gets no response. */
  id?: RequestId;
  method: string;
  /** The `params` member as sent; `{}` when omitted. */
  params: unknown;
}

/** An entry that is not a request; its response carries `error` under `id`. */
export interface InvalidEntry {
  valid: false;
  id: RequestId;
  error: RpcError;
}

export type Entry = Request | InvalidEntry;

export type Frame =
  | { kind: "single"; entry: Entry }
  | { kind: "batch"; entries: Entry[] }
  /** The frame as a whole is an error, sent with id null. */
  | { kind: "error"; error: RpcError };

const allowedMembers = new Set(["jsonrpc", "id", "method", "params"]);

/**
 * A number id must survive the echo: `1e400` parses to Infinity, which
 * JSON.stringify writes as null, so the client could not match it.
 * NOTE: number ids are echoed as doubles, so `1.0` comes back as `1` and
 * integers beyond 2^53 lose digits. Echoing the sent text would need a
 * JSON parser that keeps it.
 */
function isValidId(id: unknown): id is RequestId {
  if (typeof id === "number") return Number.isFinite(id);
  return id === null || typeof id === "string";
}

/** Reads one JSON-RPC message, or explains why it is not one. */
export function readEntry(message: unknown): Entry {
  if (
    message === null ||
    typeof message !== "object" ||
    Array.isArray(message)
  ) {
    return invalid(null, "Each message must be a JSON-RPC 2.0 request object.");
  }
  const object = message as Record<string, unknown>;
  const hasId = Object.hasOwn(object, "id");
  if (hasId && !isValidId(object.id)) {
    return invalid(null, "The id must be a string, a finite number or null.");
  }
  const id = hasId ? (object.id as RequestId) : null;

  if (object.jsonrpc !== "2.0") {
    return invalid(id, 'The member "jsonrpc" must be exactly "2.0".');
  }
  if (typeof object.method !== "string") {
    return invalid(id, 'The member "method" must be a string.');
  }
  for (const member of Object.keys(object)) {
    if (!allowedMembers.has(member)) {
      return invalid(
        id,
        `Unknown member '${member}' in the request; use only jsonrpc, id, method and params.`,
      );
    }
  }

  const params = Object.hasOwn(object, "params") ? object.params : {};
  const request: Request = { valid: true, method: object.method, params };
  if (hasId) request.id = id;
  return request;
}

function invalid(id: RequestId, message: string): InvalidEntry {
  return {
    valid: false,
    id,
    error: new RpcError(ErrorCode.InvalidRequest, message),
  };
}

/** Parses the text of one frame or HTTP body into requests. */
export function parseFrame(text: string): Frame {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return {
      kind: "error",
      error: new RpcError(
        ErrorCode.ParseError,
        "The message is not valid JSON; send one JSON-RPC request or batch per message.",
      ),
    };
  }

  if (!Array.isArray(message)) {
    return { kind: "single", entry: readEntry(message) };
  }
  if (message.length === 0) {
    return {
      kind: "error",
      error: new RpcError(
        ErrorCode.InvalidRequest,
        "The batch is empty; send at least one request.",
      ),
    };
  }
  if (message.length > maxBatchEntries) {
    return {
      kind: "error",
      error: new RpcError(
        ErrorCode.InvalidRequest,
        `The batch has ${message.length} entries, over the limit of ${maxBatchEntries}; split it.`,
        { limit: maxBatchEntries },
      ),
    };
  }
  return { kind: "batch", entries: message.map(readEntry) };
}
