import { RawJson } from "../protocol/json-text.js";
import type { StoredEntry } from "../store/store.js";

/** The kv/get result of an entry; the value is copied as stored JSON. */
export function entryResult(entry: StoredEntry) {
  return {
    namespace: entry.namespace,
    key: entry.key,
    value: new RawJson(entry.valueJson),
    version: entry.version,
    updatedBy: entry.updatedBy,
    updatedAt: entry.updatedAt,
  };
}
