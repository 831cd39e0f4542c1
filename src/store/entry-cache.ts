import type { StoredEntry } from "./store.js";

/**
 * Per-entry overhead added to the string lengths when estimating memory:
 * the Map slot, the entry object and the string headers, about 200 bytes
 * on V8 (an estimate, not a measurement).
 */
const entryOverheadBytes = 200;

/**
 * Recently read entries of one store, so that a repeated kv/get costs a
 * Map lookup instead of a SQLite statement. The size is bounded by an
 * estimate of the bytes held, and the entry cached first is evicted
 * first. A hit does not reorder the Map: moving the entry to the end
 * cost as much as the lookup itself under the kv/get benchmark.
 *
 * The owner keeps it exact: it replaces an entry after each committed
 * write and clears everything when another process may have written.
 */
export class EntryCache {
  private readonly entries = new Map<string, StoredEntry>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(namespace: string, key: string): StoredEntry | undefined {
    return this.entries.get(cacheKey(namespace, key));
  }

  /** Adds or replaces an entry and evicts the oldest ones beyond the bound. */
  set(entry: StoredEntry): void {
    const id = cacheKey(entry.namespace, entry.key);
    this.remove(id);
    const size = estimateBytes(entry);
    if (size > this.maxBytes) return;
    this.entries.set(id, entry);
    this.bytes += size;
    for (const [oldest, oldestEntry] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= estimateBytes(oldestEntry);
    }
  }

  /** Replaces an entry that is cached; a write does not add new ones. */
  update(entry: StoredEntry): void {
    if (this.entries.has(cacheKey(entry.namespace, entry.key))) {
      this.set(entry);
    }
  }

  delete(namespace: string, key: string): void {
    this.remove(cacheKey(namespace, key));
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private remove(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    this.entries.delete(id);
    this.bytes -= estimateBytes(entry);
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
