import type { Sql, TransactionSql } from "postgres";

import type { EntryRow } from "./rows.js";
import { stateKey } from "./write-plan.js";

/** Columns of the entries and changes tables, as EntryRow and ChangeRow name them. */
export const columns = "namespace, key, value, version, updated_by, updated_at";
export const changeColumns =
  "tenant_id, seq, op, namespace, key, value, version, actor, timestamp";

/** Selects the entry rows of `keys` that exist, keyed by stateKey. */
export async function selectEntries(
  sql: Sql | TransactionSql,
  keys: ReadonlyArray<{ namespace: string; key: string }>,
): Promise<Map<string, EntryRow>> {
  const rows = await sql<EntryRow[]>`
    SELECT ${sql.unsafe(columns.replace(/(\w+)/g, "e.$1"))}
    FROM entries e
    JOIN json_to_recordset(${JSON.stringify(keys)}::text::json)
      AS k(namespace text, key text)
      ON e.namespace = k.namespace AND e.key = k.key
  `;
  return new Map(rows.map((row) => [stateKey(row.namespace, row.key), row]));
}
