import type { Logger } from "pino";

import type { KeyRegistry } from "../auth/key-registry.js";
import type { RateLimiter } from "../auth/rate-limiter.js";
import type { RawJson } from "../protocol/json-text.js";
import type { Store } from "../store/store.js";
import type { WatchHub } from "../watch/watch-hub.js";
import type { ServerConfig } from "./config.js";
import type { Connection } from "./connection.js";
import type { ServerMetrics } from "./metrics.js";

/** Services shared by the connections and HTTP handlers of one server. */
export interface ServerContext {
  config: ServerConfig;
  logger: Logger;
  store: Store;
  hub: WatchHub;
  keys: KeyRegistry;
  metrics: ServerMetrics;
  rateLimiter: RateLimiter;
  openRpcDocument: RawJson;
  isWriteMethod(method: string): boolean;
  observeRequest(method: string, code: number): void;
  forgetConnection(connection: Connection): void;
}
