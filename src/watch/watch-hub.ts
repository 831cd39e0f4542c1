import type { Change, Store } from "../store/store.js";
import { serializeChange } from "./change-notification.js";
import { SubscriptionIndex } from "./subscription-index.js";

/** The part of a connection's watch state that the hub calls. */
export interface LiveSubscriber {
  /** The hub's mark of the last change delivered, to send each once. */
  deliveryMark: number;
  deliverLive(seq: number, frame: Buffer): void;
}

/**
 * The change feed's fan-out: receives committed changes in seq order,
 * serialises each once, and hands the same bytes to every connection with
 * a matching subscription, once per connection.
 */
export class WatchHub {
  readonly index = new SubscriptionIndex<LiveSubscriber>();
  private readonly latestSeqByTenant = new Map<string, number>();
  private mark = 0;
  private published = 0;

  constructor(private readonly store: Store) {
    store.onCommit((changes) => this.publish(changes));
  }

  get publishedCount(): number {
    return this.published;
  }

  /** Makes latestSeq() exact for the tenant; call before subscribing. */
  async loadTenant(tenantId: string): Promise<void> {
    if (this.latestSeqByTenant.has(tenantId)) return;
    const seq = await this.store.latestSeq(tenantId);
    if (!this.latestSeqByTenant.has(tenantId)) {
      this.latestSeqByTenant.set(tenantId, seq);
    }
  }

  /**
   * Returns the tenant's last published seq. A subscription registered in
   * the same synchronous step receives every change after it, live.
   */
  latestSeq(tenantId: string): number {
    return this.latestSeqByTenant.get(tenantId) ?? 0;
  }

  publish(changes: readonly Change[]): void {
    for (const change of changes) {
      this.latestSeqByTenant.set(change.tenantId, change.seq);
      this.published++;

      let frame: Buffer | undefined;
      const mark = ++this.mark;
      this.index.forEachMatch(change.namespace, (subscriber) => {
        if (subscriber.deliveryMark === mark) return;
        subscriber.deliveryMark = mark;
        frame ??= serializeChange(change);
        subscriber.deliverLive(change.seq, frame);
      });
    }
  }
}
