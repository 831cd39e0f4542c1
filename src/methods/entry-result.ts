import { RawJson } from "../protocol/json-text.js";
import type { StoredEntry } from "../store/store.js";

/**
 * Builds the kv/get result of an entry as JSON text, copying the stored
 * value's JSON. Walking a result object member by member was one of the
 * largest self times of the server (node --cpu-prof) under the kv/get
 * benchmark.
 */
export function entryResult(entry: StoredEntry): RawJson {
  return new RawJson(
    `{"namespace":${JSON.stringify(entry.namespace)},"key":${JSON.stringify(entry.key)},"value":${entry.valueJson},"version":${entry.version},"updatedBy":${JSON.stringify(entry.updatedBy)},"updatedAt":${entry.updatedAt}}`,
  );
}
