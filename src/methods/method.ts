import type { ApiKeyRecord } from "../auth/api-key.js";
import type { MethodDescription } from "../protocol/schemas.js";
import type { Store } from "../store/store.js";
import type { WatchSession } from "../watch/watch-session.js";

export interface MethodLimits {
  maxValueBytes: number;
}

export interface MethodContext {
  key: ApiKeyRecord;
  store: Store;
  limits: MethodLimits;
  /** The connection's watches; absent over POST /rpc. */
  watch?: WatchSession;
  /** Throws -32007 when the key is over its request rate. */
  takeRateToken(): void;
}

/**
 * One kv/* or watch/* method. The dispatcher runs the steps in the order
 * of the protocol's error checks: parse (-32602), then the key's access to
 * every namespace (-32003), then execute (caps and store errors).
 */
export interface MethodHandler<Parsed> {
  description: MethodDescription;
  /** Validates params and returns them normalised; throws -32602. */
  parse(params: unknown, limits: MethodLimits): Parsed;
  /** Namespaces the call touches, in entry order. */
  namespaces(parsed: Parsed): string[];
  /** When true, an access error carries the entry's position as data.index. */
  reportsIndex: boolean;
  execute(parsed: Parsed, context: MethodContext): Promise<unknown>;
}
