/**
 * The error catalog of the kvstream protocol: every JSON-RPC error code the
 * server sends, its name, and what a client does about it. The README's
 * error table is checked against this list by a test.
 */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  StoreUnavailable: -32001,
  CasConflict: -32002,
  Unauthorized: -32003,
  NotFound: -32004,
  ReadOnly: -32005,
  HistoryCompacted: -32006,
  RateLimited: -32007,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ErrorCatalogEntry {
  code: ErrorCodeValue;
  name: string;
  /** When the server returns it, for the OpenRPC document and the README. */
  description: string;
}

export const errorCatalog: readonly ErrorCatalogEntry[] = [
  {
    code: ErrorCode.ParseError,
    name: "Parse Error",
    description: "The frame is not valid JSON.",
  },
  {
    code: ErrorCode.InvalidRequest,
    name: "Invalid Request",
    description: "Not a JSON-RPC 2.0 request object or batch.",
  },
  {
    code: ErrorCode.MethodNotFound,
    name: "Method Not Found",
    description: "Unknown method.",
  },
  {
    code: ErrorCode.InvalidParams,
    name: "Invalid Params",
    description:
      "A missing, unknown or invalid parameter, or a limit exceeded.",
  },
  {
    code: ErrorCode.InternalError,
    name: "Internal Error",
    description: "A server bug; data.errorId names the log entry.",
  },
  {
    code: ErrorCode.StoreUnavailable,
    name: "Store Unavailable",
    description:
      "The backing store is down or refuses writes; data.reason. Safe to retry, unless data.reason says the outcome is unknown.",
  },
  {
    code: ErrorCode.CasConflict,
    name: "CAS Conflict",
    description:
      "The key's version differs from cas; data: namespace, key, expected, actual.",
  },
  {
    code: ErrorCode.Unauthorized,
    name: "Unauthorized",
    description:
      "The API key is missing, invalid or revoked, or the namespace is outside its tenant or scope.",
  },
  {
    code: ErrorCode.NotFound,
    name: "Not Found",
    description: "The key does not exist; data: namespace, key.",
  },
  {
    code: ErrorCode.ReadOnly,
    name: "Read Only",
    description: "An agent key was used for a write method.",
  },
  {
    code: ErrorCode.HistoryCompacted,
    name: "History Compacted",
    description:
      "fromSeq is older than the retained history or storeId differs; data: oldestSeq, storeId.",
  },
  {
    code: ErrorCode.RateLimited,
    name: "Rate Limited",
    description:
      "Too many requests (data.retryAfterMs) or a per-connection cap reached (data.limit).",
  },
];

/** An error that becomes a JSON-RPC error object in the response. */
export class RpcError extends Error {
  readonly code: ErrorCodeValue;
  readonly data: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCodeValue,
    message: string,
    data?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
  }

  /** Returns a copy whose data carries the position of the failing entry. */
  atIndex(index: number): RpcError {
    return new RpcError(this.code, this.message, { ...this.data, index });
  }

  toJSON(): { code: number; message: string; data?: Record<string, unknown> } {
    if (this.data === undefined)
      return { code: this.code, message: this.message };
    return { code: this.code, message: this.message, data: this.data };
  }
}

export function invalidParams(
  message: string,
  data?: Record<string, unknown>,
): RpcError {
  return new RpcError(ErrorCode.InvalidParams, message, data);
}

/**
 * The one message for every authorization failure on a namespace, so that
 * the answer never reveals whether another tenant or key exists.
 */
export function namespaceForbidden(): RpcError {
  return new RpcError(
    ErrorCode.Unauthorized,
    "This API key may not access that namespace; use a key of the namespace's tenant whose scope covers it.",
  );
}

export function unauthenticated(): RpcError {
  return new RpcError(
    ErrorCode.Unauthorized,
    "Missing, invalid or revoked API key; connect with 'Authorization: Bearer <API_KEY>' and a valid key.",
  );
}

export function storeUnavailable(reason: string): RpcError {
  return new RpcError(
    ErrorCode.StoreUnavailable,
    "The backing store is unavailable; retry later.",
    { reason },
  );
}
