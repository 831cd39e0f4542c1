import { RawJson } from "../protocol/json-text.js";
import { notification } from "../protocol/response.js";
import type { Change } from "../store/store.js";

/**
 * Serialises a change as a `watch/change` notification frame, as UTF-8
 * bytes. Fan-out sends the same Buffer to every subscriber, so the text
 * is encoded once per change instead of once per socket.
 */
export function serializeChange(change: Change): Buffer {
  const text = notification("watch/change", {
    seq: change.seq,
    op: change.op,
    namespace: change.namespace,
    key: change.key,
    value:
      change.valueJson === undefined
        ? undefined
        : new RawJson(change.valueJson),
    version: change.version,
    actor: change.actor,
    timestamp: change.timestamp,
    tenantId: change.tenantId,
  });
  return Buffer.from(text, "utf8");
}
