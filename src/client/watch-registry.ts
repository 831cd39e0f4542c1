import type { KvError } from "./kv-error.js";
import type { Change } from "./types.js";
import type { Watch } from "./watch.js";

/**
 * The watches of one client by namespace. It routes each watch/change to
 * every watch whose namespace is the change's or lies above it. Each
 * watch drops the changes it has already taken, because a replay for
 * another watch may send them again.
 */
export class WatchRegistry {
  private readonly watches = new Map<string, Watch>();

  has(namespace: string): boolean {
    return this.watches.has(namespace);
  }

  add(watch: Watch): void {
    this.watches.set(watch.namespace, watch);
  }

  remove(watch: Watch): void {
    if (this.watches.get(watch.namespace) === watch) {
      this.watches.delete(watch.namespace);
    }
  }

  subscribeAll(): void {
    for (const watch of this.watches.values()) watch.subscribeIfPending();
  }

  connectionLost(): void {
    for (const watch of this.watches.values()) watch.connectionLost();
  }

  endAll(error: KvError | undefined): void {
    for (const watch of [...this.watches.values()]) watch.end(error);
  }

  route(change: Change): void {
    for (const watch of this.watches.values()) {
      if (covers(watch.namespace, change.namespace)) watch.offer(change);
    }
  }
}

/** Returns whether `namespace` is `watched` or lies below it. */
function covers(watched: string, namespace: string): boolean {
  return namespace === watched || namespace.startsWith(`${watched}/`);
}
