import type { ApiKeyRecord, Role } from "../auth/api-key.js";
import type { Change, Page, StoredEntry } from "./store.js";

/** Row shapes shared by the SQL stores, with their mapping to store types. */

export interface EntryRow {
  namespace: string;
  key: string;
  value: string | null;
  version: number;
  updated_by: string;
  updated_at: number;
}

export interface ChangeRow {
  tenant_id: string;
  seq: number;
  op: "set" | "delete";
  namespace: string;
  key: string;
  value: string | null;
  version: number;
  actor: string;
  timestamp: number;
}

export interface ApiKeyRow {
  id: string;
  tenant_id: string;
  role: Role;
  scope: string | null;
  name: string | null;
  created_at: number;
  revoked_at: number | null;
}

export function toEntry(row: EntryRow): StoredEntry {
  return {
    namespace: row.namespace,
    key: row.key,
    valueJson: row.value!,
    version: row.version,
    updatedBy: row.updated_by,
    updatedAt: row.updated_at,
  };
}

export function toChange(row: ChangeRow): Change {
  const change: Change = {
    tenantId: row.tenant_id,
    seq: row.seq,
    op: row.op,
    namespace: row.namespace,
    key: row.key,
    version: row.version,
    actor: row.actor,
    timestamp: row.timestamp,
  };
  if (row.value !== null) change.valueJson = row.value;
  return change;
}

export function toApiKey(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    role: row.role,
    scope: row.scope,
    name: row.name,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

/** SQL bounds of "equal to or below" a namespace: `ns` or `[ns/, ns0)`. */
export function subtreeBounds(namespace: string) {
  return { ns: namespace, below: `${namespace}/`, beyond: `${namespace}0` };
}

/**
 * JSON size of a kv/list item, for the page byte limit. Key and actor are
 * measured escaped, since `"` and `\` double in JSON; the value is stored
 * as JSON already; 80 bytes cover the member names and numbers.
 */
export function estimateItemBytes(row: EntryRow): number {
  return (
    Buffer.byteLength(JSON.stringify(row.key)) +
    Buffer.byteLength(row.value ?? "") +
    Buffer.byteLength(JSON.stringify(row.updated_by)) +
    80
  );
}

/**
 * Takes entries from `rows` (fetched with one row more than `limit`) until
 * `limit` items or, after the first item, until their estimated JSON
 * passes `maxBytes`; `more` is true when rows were left.
 */
export function takeListPage(
  rows: Iterable<EntryRow>,
  limit: number,
  maxBytes: number,
): Page<StoredEntry> {
  const items: StoredEntry[] = [];
  let bytes = 0;
  let more = false;
  for (const row of rows) {
    const size = estimateItemBytes(row);
    if (
      items.length === limit ||
      (items.length > 0 && bytes + size > maxBytes)
    ) {
      more = true;
      break;
    }
    bytes += size;
    items.push(toEntry(row));
  }
  return { items, more };
}
