import { ClientErrorCode } from "./error-codes.js";
import { KvError } from "./kv-error.js";
import type { WebSocketConstructor } from "./socket.js";

export interface ClientOptions {
  /** The API key, `kvs_<id>_<secret>`. */
  apiKey: string;
  /** Time in ms a call waits for its response, queueing included. */
  requestTimeoutMs?: number;
  /** Time in ms one attempt to open the WebSocket may take. */
  connectTimeoutMs?: number;
  /** Delay in ms before the first reconnect attempt; doubles each time. */
  initialReconnectDelayMs?: number;
  /** Maximum delay in ms between reconnect attempts. */
  maxReconnectDelayMs?: number;
  /** Reconnect attempts in a row before the client stops; unlimited by default. */
  maxReconnectAttempts?: number;
  /** Calls that may wait for a connection while reconnecting. */
  maxQueuedRequests?: number;
  /** Changes one watch buffers for a reader that falls behind. */
  maxBufferedChanges?: number;
  /**
   * Time in ms without a ping or message from the server after which the
   * client drops the connection and reconnects, so that a server that
   * vanished without closing the TCP connection is noticed. Applies only
   * where pings are visible (the `ws` package in Node); keep it above
   * twice the server's --ping-interval-ms (30 s by default).
   */
  serverSilenceTimeoutMs?: number;
  /**
   * The WebSocket class to use. By default the global WebSocket (browsers,
   * Node 22 and later), otherwise the `ws` package.
   */
  WebSocket?: WebSocketConstructor;
}

export type ResolvedOptions = Required<Omit<ClientOptions, "WebSocket">> &
  Pick<ClientOptions, "WebSocket">;

export const defaultOptions = {
  requestTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  initialReconnectDelayMs: 100,
  maxReconnectDelayMs: 30_000,
  maxReconnectAttempts: Infinity,
  maxQueuedRequests: 1_000,
  maxBufferedChanges: 1_000,
  serverSilenceTimeoutMs: 75_000,
} as const;

const apiKeyPattern = /^[A-Za-z0-9_-]+$/;

/** Fills in defaults and throws a KvError naming the first invalid option. */
export function resolveOptions(options: ClientOptions): ResolvedOptions {
  if (typeof options?.apiKey !== "string" || options.apiKey === "") {
    throw invalidOption(
      "apiKey is missing; pass the key that `kvstream keys create` printed",
    );
  }
  if (!apiKeyPattern.test(options.apiKey)) {
    throw invalidOption(
      "apiKey is invalid: an API key contains only A-Z, a-z, 0-9, '_' and '-'",
    );
  }
  const resolved: ResolvedOptions = { ...defaultOptions, ...options };
  for (const name of Object.keys(defaultOptions) as Array<
    keyof typeof defaultOptions
  >) {
    const value = resolved[name];
    const valid =
      typeof value === "number" &&
      value >= 1 &&
      (Number.isInteger(value) || value === Infinity);
    if (!valid) {
      throw invalidOption(
        `${name} is invalid (${String(value)}); use a positive integer`,
      );
    }
  }
  if (resolved.maxReconnectDelayMs < resolved.initialReconnectDelayMs) {
    throw invalidOption(
      "maxReconnectDelayMs is below initialReconnectDelayMs; raise it or lower initialReconnectDelayMs",
    );
  }
  return resolved;
}

/**
 * Throws a KvError unless `url` is a ws: or wss: URL, so that a typo is
 * reported as invalid input rather than as a failed connection.
 */
export function checkUrl(url: string): void {
  let protocol: string | undefined;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol === "ws:" || protocol === "wss:") return;

  throw invalidOption(
    `url '${url}' is invalid; use a WebSocket URL such as ws://127.0.0.1:7070/stream`,
  );
}

function invalidOption(message: string): KvError {
  return new KvError(
    ClientErrorCode.InvalidOptions,
    `Invalid option: ${message}.`,
  );
}
