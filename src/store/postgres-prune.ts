import type { Sql } from "postgres";

import type { HistoryHolds } from "./history-holds.js";

/** How much change history each tenant keeps, at least. */
export interface HistoryRetention {
  historyChanges: number;
  historySeconds: number;
}

/**
 * Deletes the oldest changes of each tenant beyond both the retained
 * count and the retained age, at most 10,000 rows per tenant per run.
 * Every process prunes, and an advisory lock per tenant lets one process
 * at a time delete.
 */
// NOTE: a history hold protects a replay only from this process's
// pruning. Another process may delete history that a replay here still
// reads once it is older than both retention limits. The replay then
// skips those changes.
export async function pruneHistory(
  sql: Sql,
  holds: HistoryHolds,
  retention: HistoryRetention,
): Promise<void> {
  const { historyChanges, historySeconds } = retention;
  const cutoffTime = Date.now() - historySeconds * 1000;
  const tenants = await sql<
    Array<{ tenant_id: string; last_seq: number; oldest_seq: number }>
  >`
    SELECT tenant_id, last_seq, oldest_seq FROM tenants
    WHERE last_seq - oldest_seq + 1 > ${historyChanges}
  `;
  for (const tenant of tenants) {
    const [youngest] = await sql<Array<{ seq: number }>>`
      SELECT seq FROM changes
      WHERE tenant_id = ${tenant.tenant_id} AND timestamp >= ${cutoffTime}
      ORDER BY seq LIMIT 1
    `;
    const keepFrom = Math.min(
      tenant.last_seq - historyChanges + 1,
      youngest?.seq ?? tenant.last_seq + 1,
      tenant.oldest_seq + 10_000,
      holds.firstHeldSeq(tenant.tenant_id),
    );
    if (keepFrom <= tenant.oldest_seq) continue;

    await sql.begin(async (tx) => {
      const [locked] = await tx<Array<{ locked: boolean }>>`
        SELECT pg_try_advisory_xact_lock(
          hashtext('kvstream prune'), hashtext(${tenant.tenant_id})
        ) AS locked
      `;
      if (!locked.locked) return;
      await tx`
        DELETE FROM changes
        WHERE tenant_id = ${tenant.tenant_id} AND seq < ${keepFrom}
      `;
      await tx`
        UPDATE tenants SET oldest_seq = greatest(oldest_seq, ${keepFrom})
        WHERE tenant_id = ${tenant.tenant_id}
      `;
    });
  }
}
