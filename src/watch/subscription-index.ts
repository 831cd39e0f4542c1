import { namespaceAndAncestors } from "../names/namespace.js";

/**
 * Subscribers by the exact namespace they watch. A change is matched by
 * looking up its namespace and each ancestor, so the cost grows with the
 * depth of the namespace, not with the number of subscriptions elsewhere.
 */
export class SubscriptionIndex<Subscriber> {
  private readonly byNamespace = new Map<string, Set<Subscriber>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(namespace: string, subscriber: Subscriber): void {
    let subscribers = this.byNamespace.get(namespace);
    if (!subscribers) {
      subscribers = new Set();
      this.byNamespace.set(namespace, subscribers);
    }
    if (!subscribers.has(subscriber)) {
      subscribers.add(subscriber);
      this.count++;
    }
  }

  remove(namespace: string, subscriber: Subscriber): void {
    const subscribers = this.byNamespace.get(namespace);
    if (!subscribers?.delete(subscriber)) return;
    this.count--;
    if (subscribers.size === 0) this.byNamespace.delete(namespace);
  }

  /** Calls `visit` for each subscription that covers `namespace`. */
  forEachMatch(
    namespace: string,
    visit: (subscriber: Subscriber) => void,
  ): void {
    for (const candidate of namespaceAndAncestors(namespace)) {
      const subscribers = this.byNamespace.get(candidate);
      if (subscribers) for (const subscriber of subscribers) visit(subscriber);
    }
  }
}
