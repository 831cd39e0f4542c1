import type { StoredEntry } from "./store.js";

/**
 * Per-entry overhead added to the string lengths when estimating memory:
 * two Map slots, the entry object and the string headers, about 200 bytes
 * on V8 (an estimate, not a measurement).
 */
const entryOverheadBytes = 200;

/**
 * Recently read entries of one store, so that a repeated kv/get costs two
 * Map lookups instead of a SQLite statement. The size is bounded by an
 * estimate of the bytes held, and the entry cached first is evicted
 * first. A hit does not reorder anything: moving the entry to the end of
 * a Map cost as much as the lookup itself under the kv/get benchmark.
 *
 * The owner keeps it exact: it replaces an entry after each committed
 * write and clears everything when another process may have written.
 */
export class EntryCache {
  /** Lookups go namespace first, so a hit builds no combined key. */
  private readonly byNamespace = new Map<string, Map<string, StoredEntry>>();
  /** The same entries by combined key, oldest first, for eviction. */
  private readonly order = new Map<string, StoredEntry>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(namespace: string, key: string): StoredEntry | undefined {
    return this.byNamespace.get(namespace)?.get(key);
  }

  /** Adds or replaces an entry and evicts the oldest ones beyond the bound. */
  set(entry: StoredEntry): void {
    this.delete(entry.namespace, entry.key);
    const size = estimateBytes(entry);
    if (size > this.maxBytes) return;

    let keys = this.byNamespace.get(entry.namespace);
    if (!keys) {
      keys = new Map();
      this.byNamespace.set(entry.namespace, keys);
    }
    keys.set(entry.key, entry);
    this.order.set(cacheKey(entry.namespace, entry.key), entry);
    this.bytes += size;

    for (const oldest of this.order.values()) {
      if (this.bytes <= this.maxBytes) break;
      this.delete(oldest.namespace, oldest.key);
    }
  }

  /** Replaces an entry that is cached; a write does not add new ones. */
  update(entry: StoredEntry): void {
    if (this.get(entry.namespace, entry.key)) this.set(entry);
  }

  delete(namespace: string, key: string): void {
    const keys = this.byNamespace.get(namespace);
    const entry = keys?.get(key);
    if (!keys || !entry) return;
    keys.delete(key);
    if (keys.size === 0) this.byNamespace.delete(namespace);
    this.order.delete(cacheKey(namespace, key));
    this.bytes -= estimateBytes(entry);
  }

  clear(): void {
    this.byNamespace.clear();
    this.order.clear();
    this.bytes = 0;
  }
}

// Namespaces and keys contain no control characters, so U+0000 cannot
// occur in either and separates them unambiguously.
function cacheKey(namespace: string, key: string): string {
  return `${namespace}\u0000${key}`;
}

function estimateBytes(entry: StoredEntry): number {
  return (
    entry.namespace.length +
    entry.key.length +
    entry.valueJson.length +
    entry.updatedBy.length +
    entryOverheadBytes
  );
}
