import type { ApiKeyRecord } from "../auth/api-key.js";

/** A live key as stored; `valueJson` is the compact JSON text of the value. */
export interface StoredEntry {
  namespace: string;
  key: string;
  valueJson: string;
  version: number;
  updatedBy: string;
  updatedAt: number;
}

export type WriteOperation =
  | {
      op: "set";
      namespace: string;
      key: string;
      valueJson: string;
      cas?: number;
    }
  | { op: "delete"; namespace: string; key: string; cas?: number };

/** One atomic write: kv/set and kv/delete are batches of one operation. */
export interface WriteRequest {
  tenantId: string;
  actor: string;
  operations: WriteOperation[];
  /** kv/batch reports the failing operation's position in data.index. */
  reportIndex: boolean;
}

/** A committed change, the unit of the change feed and of history. */
export interface Change {
  tenantId: string;
  seq: number;
  op: "set" | "delete";
  namespace: string;
  key: string;
  /** Absent for a delete. */
  valueJson?: string;
  version: number;
  actor: string;
  timestamp: number;
}

export interface Page<T> {
  items: T[];
  /** True when more items follow the last one returned. */
  more: boolean;
}

export interface NamespaceCount {
  namespace: string;
  keys: number;
}

export interface HistoryBounds {
  /** The oldest retained seq; latestSeq + 1 when nothing is retained. */
  oldestSeq: number;
  latestSeq: number;
}

export interface NewApiKey {
  record: ApiKeyRecord;
  hash: string;
}

/**
 * Keeps a tenant's history after `afterSeq` from being pruned while a
 * replay reads it. Holds are per process.
 */
export interface HistoryHold {
  /** Lets history up to and including `afterSeq` go. */
  moveTo(afterSeq: number): void;
  /** Ends the hold; calling it again does nothing. */
  release(): void;
}

/** Called after each commit with its changes in seq order. */
export type CommitListener = (changes: Change[]) => void;

/**
 * The backing store. Every method is asynchronous so that a networked
 * store fits the same shape as the embedded one. Errors that the client
 * should see are RpcError; any other error is a bug or an outage.
 */
export interface Store {
  /** Random id of this store's history, made when the store is created. */
  readonly storeId: string;
  /**
   * How many frames with reads one connection may run at once. 1 suits a
   * store whose reads finish synchronously; a networked store overlaps
   * its round trips.
   */
  readonly maxReadsInFlight: number;

  get(namespace: string, key: string): Promise<StoredEntry | null>;
  getMany(
    entries: ReadonlyArray<{ namespace: string; key: string }>,
  ): Promise<Array<StoredEntry | null>>;
  /**
   * Lists live keys of exactly `namespace` that start with `prefix` and
   * sort after `afterKey`, stopping at `limit` items or once their JSON
   * passes `maxBytes`.
   */
  list(options: {
    namespace: string;
    prefix: string;
    afterKey: string | null;
    limit: number;
    maxBytes: number;
  }): Promise<Page<StoredEntry>>;
  /** Lists namespaces equal to or below `namespace` that hold live keys. */
  namespaces(options: {
    namespace: string;
    afterNamespace: string | null;
    limit: number;
  }): Promise<Page<NamespaceCount>>;

  /** Applies one atomic write after its commit is durable. */
  write(request: WriteRequest): Promise<Change[]>;
  onCommit(listener: CommitListener): void;

  /** The latest committed seq of a tenant, 0 when it has none. */
  latestSeq(tenantId: string): Promise<number>;
  historyBounds(tenantId: string): Promise<HistoryBounds>;
  /**
   * Reads retained changes of a tenant with afterSeq < seq <= uptoSeq
   * whose namespace is `namespace` or below it, in seq order.
   */
  holdHistory(tenantId: string, afterSeq: number): HistoryHold;
  readChanges(options: {
    tenantId: string;
    namespace: string;
    afterSeq: number;
    uptoSeq: number;
    limit: number;
  }): Promise<Change[]>;

  createApiKey(key: NewApiKey): Promise<void>;
  /**
   * Creates `key` only if the store has no API keys, atomically across
   * processes. Returns whether it was created.
   */
  createFirstApiKey(key: NewApiKey): Promise<boolean>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  findApiKey(hash: string): Promise<ApiKeyRecord | null>;
  /** Marks a key revoked; returns false when no key has that id. */
  revokeApiKey(id: string, at: number): Promise<boolean>;
  /** Changes whenever a key is created or revoked, by any process. */
  apiKeysVersion(): Promise<number>;

  /** Resolves when the store takes writes; rejects with the reason. */
  checkWritable(): Promise<void>;
  close(): Promise<void>;
}
