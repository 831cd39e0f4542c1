import type { KvErrorCode } from "./error-codes.js";

/**
 * The one error class of the SDK. `code` is a protocol code from the
 * server or a client code, both listed in ErrorCode; `data` is the
 * server's machine-readable detail, or the client's for its own codes.
 */
export class KvError extends Error {
  readonly code: KvErrorCode;
  readonly data: Record<string, unknown> | undefined;

  constructor(
    code: KvErrorCode,
    message: string,
    options: { data?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "KvError";
    this.code = code;
    this.data = options.data;
  }
}

/** Converts a JSON-RPC error object from the server into a KvError. */
export function kvErrorFromResponse(error: unknown): KvError {
  const object = (error ?? {}) as {
    code?: unknown;
    message?: unknown;
    data?: unknown;
  };
  const code = typeof object.code === "number" ? object.code : -32603;
  const message =
    typeof object.message === "string"
      ? object.message
      : "The server returned an error without a message.";
  const data =
    typeof object.data === "object" && object.data !== null
      ? (object.data as Record<string, unknown>)
      : undefined;
  return new KvError(code as KvErrorCode, message, { data });
}
