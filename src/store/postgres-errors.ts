import { RpcError, storeUnavailable } from "../protocol/errors.js";

/**
 * SQLSTATE classes that mean the database cannot take the operation now,
 * as opposed to a bug. They are 08 connection exception, 40 transaction
 * rollback (serialization failure, deadlock), 53 insufficient resources,
 * 54 program limit exceeded (a full NOTIFY queue), 55 object not in
 * prerequisite state (lock not available), 57 operator intervention
 * (shutdown, statement timeout) and 58 system error. 25006 is a write
 * on a read-only standby.
 */
const unavailableStates = /^(08|40|53|54|55|57|58)|^25006$/;

/**
 * Error codes of the postgres driver and of Node's sockets for a lost link,
 * or for a database that gave no connection or no reply in time.
 */
const connectionCodes = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECT_TIMEOUT",
  "QUEUE_TIMEOUT",
  "QUERY_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
]);

export function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== "string") return false;
  return connectionCodes.has(code) || unavailableStates.test(code);
}

/**
 * Maps a database error to -32001 when it means an outage; returns any
 * other error unchanged. The reason carries the driver's message, which
 * names the condition and never a stored value.
 */
export function toStoreError(error: unknown): unknown {
  if (error instanceof RpcError || !isUnavailable(error)) return error;
  return storeUnavailable(formatDriverError(error));
}

/** Formats a driver or socket error as its message and its code. */
export function formatDriverError(error: unknown): string {
  const { message, code } = error as { message?: unknown; code?: unknown };
  if (typeof code !== "string") return String(message ?? error);
  return `${String(message)} (${code})`;
}

/**
 * Settles like `work`, but rejects with -32001 once `ms` pass first. The
 * work goes on in the background and its late outcome is dropped, so it
 * suits reads only. Writes use the deadlines of GroupCommit, which roll
 * back a write that timed out.
 */
export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          storeUnavailable(
            `PostgreSQL did not respond within ${ms} ms (timed out)`,
          ),
        ),
      ms,
    );
  });
  const mapped = work.catch((error: unknown) => {
    throw toStoreError(error);
  });
  return Promise.race([mapped, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Settles like `work`, but rejects with -32001 once the database has sent
 * no reply to anything for `silenceMs`, checked from `silenceMs` after the
 * start, or once `maxMs` pass. A database that replies to other queries
 * is slow, not unreachable, so a long read may go on. One that replies to
 * nothing is treated as down within about `silenceMs`. Like
 * `withDeadline`, it suits reads only.
 */
export function withSilenceDeadline<T>(
  work: Promise<T>,
  options: { silenceMs: number; maxMs: number; lastReplyAt: () => number },
): Promise<T> {
  const started = Date.now();
  const checkEveryMs = Math.max(10, Math.floor(options.silenceMs / 10));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    const check = () => {
      const now = Date.now();
      const silentFor = now - Math.max(options.lastReplyAt(), started);
      if (silentFor >= options.silenceMs) {
        reject(
          storeUnavailable(
            `PostgreSQL sent no reply for ${silentFor} ms (timed out)`,
          ),
        );
      } else if (now - started >= options.maxMs) {
        reject(
          storeUnavailable(
            `PostgreSQL did not complete the read within ${options.maxMs} ms (timed out)`,
          ),
        );
      } else {
        timer = setTimeout(check, checkEveryMs);
      }
    };
    timer = setTimeout(check, options.silenceMs);
  });
  const mapped = work.catch((error: unknown) => {
    throw toStoreError(error);
  });
  return Promise.race([mapped, timeout]).finally(() => clearTimeout(timer));
}
