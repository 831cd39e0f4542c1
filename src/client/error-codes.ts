import { ErrorCode as ProtocolErrorCode } from "../protocol/errors.js";

/**
 * Codes of failures that the client detects itself. They lie outside the
 * range -32768 to -32000 that JSON-RPC 2.0 reserves, so they never collide
 * with a code the server sends.
 */
export const ClientErrorCode = {
  /** No response arrived within requestTimeoutMs. */
  Timeout: -31001,
  /** close() was called, or the client had already stopped. */
  Closed: -31002,
  /** A write was sent but the connection dropped before its response. */
  OutcomeUnknown: -31003,
  /** Too many requests wait for a connection (maxQueuedRequests). */
  QueueFull: -31004,
  /** The connection could not be opened, or reconnecting gave up. */
  ConnectFailed: -31005,
  /** The server closed the connection with 1009, and this call's frame was the largest unanswered one. */
  MessageTooLarge: -31006,
  /** This client already watches the namespace. */
  AlreadyWatching: -31007,
  /** The URL or an option passed to connect() is missing or invalid. */
  InvalidOptions: -31008,
  /** A call's params cannot be encoded as JSON, so nothing was sent. */
  NotSerializable: -31009,
} as const;

/**
 * Every code a KvError can carry: the server's protocol codes, taken from
 * the server's own catalog so that they cannot drift, and the client's.
 */
export const ErrorCode = { ...ProtocolErrorCode, ...ClientErrorCode } as const;

export type ClientErrorCodeValue =
  (typeof ClientErrorCode)[keyof typeof ClientErrorCode];
export type KvErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
