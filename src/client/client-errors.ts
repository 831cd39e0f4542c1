import { ClientErrorCode, ErrorCode } from "./error-codes.js";
import { KvError } from "./kv-error.js";

// The client's own failures, each with a message that names the next step.

export function queueFull(method: string, limit: number): KvError {
  return new KvError(
    ClientErrorCode.QueueFull,
    `${method} was rejected: ${limit} calls already wait for the connection to return (maxQueuedRequests); retry later or raise the limit.`,
    { data: { limit } },
  );
}

export function clientClosed(): KvError {
  return new KvError(
    ClientErrorCode.Closed,
    "The client was closed before the call completed.",
  );
}

export function timedOut(
  method: string,
  timeoutMs: number,
  sent: boolean,
  isWrite: boolean,
): KvError {
  const outcome =
    isWrite && sent
      ? " The write may or may not have been applied; read the key, or resend with cas."
      : "";
  return new KvError(
    ClientErrorCode.Timeout,
    `${method} timed out after ${timeoutMs} ms (requestTimeoutMs).${outcome}`,
    { data: { method, timeoutMs, sent } },
  );
}

export function connectFailed(
  url: string,
  closeCode: number,
  reason: string,
  cause: unknown,
): KvError {
  return new KvError(
    ClientErrorCode.ConnectFailed,
    `Could not connect to ${url}: ${reason}. Check the URL and that the server runs.`,
    { data: { url, closeCode }, cause },
  );
}

export function reconnectFailed(
  url: string,
  failures: number,
  closeCode: number,
  closeReason: string,
): KvError {
  return new KvError(
    ClientErrorCode.ConnectFailed,
    `Reconnecting to ${url} failed ${failures} times in a row (maxReconnectAttempts); the client stopped.`,
    { data: { url, closeCode, closeReason } },
  );
}

export function outcomeUnknown(method: string, closeCode: number): KvError {
  return new KvError(
    ClientErrorCode.OutcomeUnknown,
    `The connection was lost (close code ${closeCode}) after ${method} was sent and before its response; the write may or may not have been applied. Read the key, or resend with cas.`,
    { data: { method, closeCode } },
  );
}

export function messageTooLarge(method: string, reason: string): KvError {
  return new KvError(
    ClientErrorCode.MessageTooLarge,
    `The server closed the connection with 1009 (${reason || "message too big"}): ${method} was the largest unanswered request, so it is taken to exceed the server's --max-message-bytes. Split it into smaller calls. It was not resent.`,
    { data: { method, closeCode: 1009 } },
  );
}

export function keyRejected(reason: string): KvError {
  return new KvError(
    ErrorCode.Unauthorized,
    `The server closed the connection with 4401 (${reason || "no valid API key"}): the API key is missing, invalid or revoked. Create a key with \`kvstream keys create\` and connect with it.`,
    { data: { closeCode: 4401, closeReason: reason } },
  );
}

export function notSerializable(
  method: string,
  reason: string,
  cause: unknown,
): KvError {
  return new KvError(
    ClientErrorCode.NotSerializable,
    `${method} params cannot be sent as JSON (${reason}); pass finite numbers, strings, booleans, null, arrays and plain objects without cycles. Nothing was sent.`,
    { data: { method }, cause },
  );
}

export function alreadyWatching(namespace: string): KvError {
  return new KvError(
    ClientErrorCode.AlreadyWatching,
    `This client already watches ${namespace}; iterate that watch, or close it before watching the namespace again.`,
    { data: { namespace } },
  );
}
