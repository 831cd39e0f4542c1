import type { HistoryHold } from "./store.js";

/**
 * The history holds of one process: for each tenant, the afterSeq of
 * every replay that still reads history.
 */
export class HistoryHolds {
  private readonly holds = new Map<string, Set<{ afterSeq: number }>>();

  hold(tenantId: string, afterSeq: number): HistoryHold {
    const hold = { afterSeq };
    let tenantHolds = this.holds.get(tenantId);
    if (!tenantHolds) {
      tenantHolds = new Set();
      this.holds.set(tenantId, tenantHolds);
    }
    tenantHolds.add(hold);
    return {
      moveTo: (seq) => {
        hold.afterSeq = Math.max(hold.afterSeq, seq);
      },
      release: () => {
        tenantHolds.delete(hold);
        if (
          tenantHolds.size === 0 &&
          this.holds.get(tenantId) === tenantHolds
        ) {
          this.holds.delete(tenantId);
        }
      },
    };
  }

  /** Returns the first seq that a hold keeps for the tenant, or Infinity. */
  firstHeldSeq(tenantId: string): number {
    let first = Number.POSITIVE_INFINITY;
    for (const hold of this.holds.get(tenantId) ?? []) {
      first = Math.min(first, hold.afterSeq + 1);
    }
    return first;
  }
}
