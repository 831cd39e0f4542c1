import { RawJson } from "../protocol/json-text.js";
import type { StoredEntry } from "../store/store.js";

/** Builds the kv/get result of an entry, copying the stored value's JSON. */
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
