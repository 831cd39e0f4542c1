/**
 * The kvstream client SDK. It runs in Node (with the `ws` package, loaded
 * only when no global WebSocket exists) and in browsers without a bundler:
 * every runtime import of this module graph is a relative path.
 */
export { connect, KvClient } from "./client.js";
export type { CallbackWatchOptions, WatchHandle } from "./client.js";
export { ClientErrorCode, ErrorCode } from "./error-codes.js";
export type { ClientErrorCodeValue, KvErrorCode } from "./error-codes.js";
export { KvError } from "./kv-error.js";
export { defaultOptions } from "./options.js";
export type { ClientOptions } from "./options.js";
export type { WebSocketConstructor, WebSocketLike } from "./socket.js";
export type { ConnectionState, StatusEvent, StatusListener } from "./status.js";
export type * from "./types.js";
export { Watch } from "./watch.js";
export type { WatchOptions } from "./watch.js";
