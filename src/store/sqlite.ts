import Database, {
  type Database as Connection,
  type Statement,
} from "better-sqlite3";

import type { ApiKeyRecord } from "../auth/api-key.js";
import { ErrorCode, RpcError, storeUnavailable } from "../protocol/errors.js";
import { EntryCache } from "./entry-cache.js";
import { HistoryHolds } from "./history-holds.js";
import {
  takeListPage,
  subtreeBounds,
  toApiKey,
  toChange,
  toEntry,
  type ApiKeyRow,
  type ChangeRow,
  type EntryRow,
} from "./rows.js";
import { migrate } from "./sqlite-schema.js";
import type {
  Change,
  CommitListener,
  HistoryBounds,
  HistoryHold,
  NamespaceCount,
  NewApiKey,
  Page,
  Store,
  StoredEntry,
  WriteRequest,
} from "./store.js";

interface PendingWrite {
  request: WriteRequest;
  resolve: (changes: Change[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Estimated memory for cached entries, in bytes. kv/get is served from
 * memory for entries read recently.
 */
// NOTE: a fixed size, not an option of `kvstream serve` yet.
const entryCacheBytes = 32 * 1024 * 1024;

/**
 * SQLite result codes that mean the store cannot take the operation now,
 * as opposed to a bug.
 */
const unavailableCodes =
  /^SQLITE_(FULL|READONLY|IOERR|BUSY|LOCKED|CANTOPEN|PROTOCOL|NOTADB|CORRUPT|NOMEM)/;

function isUnavailable(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && unavailableCodes.test(code);
}

function toStoreError(error: unknown): unknown {
  if (!isUnavailable(error)) return error;
  // SQLite's messages name the condition ("database or disk is full"),
  // never a path or SQL, so they are safe to show.
  return storeUnavailable(`${error.message} (${error.code})`);
}

/**
 * Upper bound, as bytes, of every UTF-8 string that starts with `prefix`:
 * the prefix with its last byte plus one. UTF-8 never contains 0xFF, so
 * the increment cannot carry. SQLite compares TEXT with memcmp under the
 * BINARY collation, so a blob cast to TEXT is a valid bound even when it
 * is not valid UTF-8 itself.
 */
function prefixUpperBound(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, "utf8");
  bytes[bytes.length - 1] += 1;
  return bytes;
}

export interface SqliteStoreOptions {
  /** A file path, or ":memory:" for a throwaway store. */
  path: string;
  historyChanges: number;
  historySeconds: number;
  /** How often old history is pruned, in ms; 0 disables pruning. */
  pruneIntervalMs?: number;
  /** How long to wait for another process's lock, in ms; default 5000. */
  busyTimeoutMs?: number;
  /** Called after a failed history prune, once until a prune succeeds. */
  onPruneError?: (error: unknown) => void;
  /**
   * Largest size of the database file, in bytes; 0 for no limit. Writes
   * past it fail like on a full disk (SQLITE_FULL) while reads go on.
   */
  maxStoreBytes?: number;
}

/**
 * The embedded store: one SQLite file in WAL mode with synchronous=FULL,
 * so a commit is on disk before the server responds to its write. Writes queued in
 * one turn of the event loop share one transaction (group commit), each
 * in its own savepoint so that one failing request leaves the others.
 */
export class SqliteStore implements Store {
  readonly storeId: string;
  readonly maxReadsInFlight = 1;

  private readonly db: Connection;
  private readonly statements: ReturnType<typeof prepareStatements>;
  private readonly listeners: CommitListener[] = [];
  private queue: PendingWrite[] = [];
  private flushScheduled = false;
  private readonly lastSeqByTenant = new Map<string, number>();
  /** The error code of the last failed commit, until a commit succeeds. */
  private writeFailure: string | null = null;
  private pruneFailing = false;
  private pruneTimer: NodeJS.Timeout | undefined;
  private readonly holds = new HistoryHolds();
  private readonly cache = new EntryCache(entryCacheBytes);
  /** SQLite's data_version when the cache was last known to be exact. */
  private dataVersion = 0;
  private dataVersionChecked = false;
  private closed = false;

  constructor(private readonly options: SqliteStoreOptions) {
    this.db = new Database(options.path);
    // better-sqlite3 waits for a lock synchronously, blocking the event
    // loop, so a server waits at most 1 s and then fails with -32001.
    this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    if (options.path !== ":memory:") {
      this.db.pragma("journal_mode = WAL");
    }
    this.db.pragma("synchronous = FULL");
    migrate(this.db);
    if (options.maxStoreBytes) {
      const pageSize = this.db.pragma("page_size", { simple: true }) as number;
      const pages = Math.ceil(options.maxStoreBytes / pageSize);
      this.db.pragma(`max_page_count = ${pages}`);
    }

    this.statements = prepareStatements(this.db);
    this.storeId = (
      this.db
        .prepare("SELECT value FROM meta WHERE name = 'store_id'")
        .get() as {
        value: string;
      }
    ).value;

    const pruneIntervalMs = options.pruneIntervalMs ?? 1000;
    if (pruneIntervalMs > 0) {
      this.pruneTimer = setInterval(() => this.pruneHistory(), pruneIntervalMs);
      this.pruneTimer.unref();
    }
  }

  private read<T>(run: () => T): Promise<T> {
    try {
      return Promise.resolve(run());
    } catch (error) {
      return Promise.reject(toStoreError(error));
    }
  }

  get(namespace: string, key: string): Promise<StoredEntry | null> {
    return this.read(() => {
      this.clearCacheIfWrittenElsewhere();
      const cached = this.cache.get(namespace, key);
      if (cached) return cached;
      const row = this.statements.getEntry.get(namespace, key) as
        EntryRow | undefined;
      if (!row || row.value === null) return null;
      const entry = toEntry(row);
      this.cache.set(entry);
      return entry;
    });
  }

  /**
   * Clears the entry cache when another connection committed to the file
   * since the last check. PRAGMA data_version reveals such commits, while
   * this process's own commits update the cache instead. The check runs
   * once per event loop turn, so another process's write shows up in
   * reads from the next turn on.
   */
  private clearCacheIfWrittenElsewhere(): void {
    if (this.dataVersionChecked) return;
    this.dataVersionChecked = true;
    setImmediate(() => (this.dataVersionChecked = false));
    const version = this.statements.dataVersion.get() as number;
    if (version !== this.dataVersion) {
      this.cache.clear();
      this.dataVersion = version;
    }
  }

  getMany(
    entries: ReadonlyArray<{ namespace: string; key: string }>,
  ): Promise<Array<StoredEntry | null>> {
    return this.read(() =>
      this.db.transaction(() =>
        entries.map(({ namespace, key }) => {
          const row = this.statements.getEntry.get(namespace, key) as
            EntryRow | undefined;
          return row && row.value !== null ? toEntry(row) : null;
        }),
      )(),
    );
  }

  list(options: {
    namespace: string;
    prefix: string;
    afterKey: string | null;
    limit: number;
    maxBytes: number;
  }): Promise<Page<StoredEntry>> {
    return this.read(() => {
      const { namespace, prefix, limit, maxBytes } = options;
      const after = options.afterKey ?? "";
      const rows =
        prefix === ""
          ? this.statements.listAll.iterate(namespace, after, limit + 1)
          : this.statements.listPrefix.iterate(
              namespace,
              after,
              prefix,
              prefixUpperBound(prefix),
              limit + 1,
            );

      return takeListPage(rows as Iterable<EntryRow>, limit, maxBytes);
    });
  }

  namespaces(options: {
    namespace: string;
    afterNamespace: string | null;
    limit: number;
  }): Promise<Page<NamespaceCount>> {
    return this.read(() => {
      const bounds = subtreeBounds(options.namespace);
      const rows = this.statements.namespaces.all(
        bounds.ns,
        bounds.below,
        bounds.beyond,
        options.afterNamespace ?? "",
        options.limit + 1,
      ) as Array<{ namespace: string; live_keys: number }>;
      const more = rows.length > options.limit;
      const items = rows
        .slice(0, options.limit)
        .map((row) => ({ namespace: row.namespace, keys: row.live_keys }));
      return { items, more };
    });
  }

  write(request: WriteRequest): Promise<Change[]> {
    if (this.closed) {
      return Promise.reject(storeUnavailable("the store is closed"));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  onCommit(listener: CommitListener): void {
    this.listeners.push(listener);
  }

  /** Commits every write queued since the last flush in one transaction. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;

    const seqs = new Map<string, number>();
    const outcomes: Array<Change[] | unknown> = [];
    const committed: Change[] = [];
    const timestamp = Date.now();
    const s = this.statements;

    try {
      s.begin.run();
      try {
        for (const pending of batch) {
          const tenantId = pending.request.tenantId;
          const seqBefore = seqs.get(tenantId);
          // apply() raises a request's RpcError before that operation
          // writes, so only a request of several operations can have
          // written something to undo. Skipping the savepoint otherwise
          // saves two statements per write.
          const undoable = pending.request.operations.length > 1;
          if (undoable) s.savepoint.run();
          try {
            const changes = this.apply(pending.request, seqs, timestamp);
            if (undoable) s.release.run();
            outcomes.push(changes);
            committed.push(...changes);
          } catch (error) {
            // Any other error fails the whole commit. After SQLITE_FULL,
            // SQLITE_IOERR, SQLITE_NOMEM or SQLITE_BUSY, SQLite may already
            // have rolled the transaction back (sqlite3_get_autocommit
            // documentation), so the savepoint is not touched then.
            if (!(error instanceof RpcError)) throw error;
            if (undoable) {
              s.rollbackToSavepoint.run();
              s.release.run();
            }
            if (seqBefore === undefined) seqs.delete(tenantId);
            else seqs.set(tenantId, seqBefore);
            outcomes.push(error);
          }
        }
        for (const [tenantId, lastSeq] of seqs) {
          s.upsertTenant.run(tenantId, lastSeq);
        }
        s.commit.run();
      } catch (error) {
        if (this.db.inTransaction) s.rollback.run();
        throw error;
      }
    } catch (error) {
      const failure = toStoreError(error);
      if (isUnavailable(error)) this.writeFailure = error.code;
      for (const pending of batch) pending.reject(failure);
      return;
    }

    this.writeFailure = null;
    for (const [tenantId, lastSeq] of seqs) {
      this.lastSeqByTenant.set(tenantId, lastSeq);
    }
    for (const change of committed) {
      if (change.valueJson === undefined) {
        this.cache.delete(change.namespace, change.key);
        continue;
      }
      this.cache.update({
        namespace: change.namespace,
        key: change.key,
        valueJson: change.valueJson,
        version: change.version,
        updatedBy: change.actor,
        updatedAt: change.timestamp,
      });
    }
    batch.forEach((pending, index) => {
      const outcome = outcomes[index];
      if (outcome instanceof RpcError) pending.reject(outcome);
      else pending.resolve(outcome as Change[]);
    });
    if (committed.length > 0) {
      for (const listener of this.listeners) listener(committed);
    }
  }

  /** Applies one request inside the open transaction; throws RpcError. */
  private apply(
    request: WriteRequest,
    seqs: Map<string, number>,
    timestamp: number,
  ): Change[] {
    const s = this.statements;
    const changes: Change[] = [];
    let seq = seqs.get(request.tenantId) ?? this.loadLastSeq(request.tenantId);

    request.operations.forEach((operation, index) => {
      const { namespace, key } = operation;
      const row = s.getEntry.get(namespace, key) as EntryRow | undefined;
      const live = row !== undefined && row.value !== null;
      const currentVersion = live ? row.version : 0;

      const fail = (error: RpcError) =>
        request.reportIndex ? error.atIndex(index) : error;
      if (operation.cas !== undefined && operation.cas !== currentVersion) {
        throw fail(
          new RpcError(
            ErrorCode.CasConflict,
            `The key's version is ${currentVersion}, not ${operation.cas}; read it again and retry with its current version.`,
            { namespace, key, expected: operation.cas, actual: currentVersion },
          ),
        );
      }
      if (operation.op === "delete" && !live) {
        throw fail(
          new RpcError(ErrorCode.NotFound, "The key does not exist.", {
            namespace,
            key,
          }),
        );
      }

      const version = (row?.version ?? 0) + 1;
      seq += 1;
      const valueJson = operation.op === "set" ? operation.valueJson : null;
      s.upsertEntry.run(
        namespace,
        key,
        valueJson,
        version,
        request.actor,
        timestamp,
      );
      if (operation.op === "set" && !live) s.incrementCount.run(namespace);
      if (operation.op === "delete") {
        s.decrementCount.run(namespace);
        s.dropEmptyCount.run(namespace);
      }
      s.insertChange.run(
        request.tenantId,
        seq,
        operation.op,
        namespace,
        key,
        valueJson,
        version,
        request.actor,
        timestamp,
      );

      const change: Change = {
        tenantId: request.tenantId,
        seq,
        op: operation.op,
        namespace,
        key,
        version,
        actor: request.actor,
        timestamp,
      };
      if (valueJson !== null) change.valueJson = valueJson;
      changes.push(change);
    });

    seqs.set(request.tenantId, seq);
    return changes;
  }

  private loadLastSeq(tenantId: string): number {
    const cached = this.lastSeqByTenant.get(tenantId);
    if (cached !== undefined) return cached;
    const row = this.statements.getTenant.get(tenantId) as
      { last_seq: number } | undefined;
    return row?.last_seq ?? 0;
  }

  latestSeq(tenantId: string): Promise<number> {
    return this.read(() => this.loadLastSeq(tenantId));
  }

  historyBounds(tenantId: string): Promise<HistoryBounds> {
    return this.read(() => {
      const row = this.statements.getTenant.get(tenantId) as
        { last_seq: number; oldest_seq: number } | undefined;
      if (!row) return { oldestSeq: 1, latestSeq: 0 };
      return { oldestSeq: row.oldest_seq, latestSeq: row.last_seq };
    });
  }

  holdHistory(tenantId: string, afterSeq: number): HistoryHold {
    return this.holds.hold(tenantId, afterSeq);
  }

  readChanges(options: {
    tenantId: string;
    namespace: string;
    afterSeq: number;
    uptoSeq: number;
    limit: number;
  }): Promise<Change[]> {
    return this.read(() => {
      const bounds = subtreeBounds(options.namespace);
      const rows = this.statements.readChanges.all(
        options.tenantId,
        options.afterSeq,
        options.uptoSeq,
        bounds.ns,
        bounds.below,
        bounds.beyond,
        options.limit,
      ) as ChangeRow[];
      return rows.map(toChange);
    });
  }

  /**
   * Deletes the oldest changes of each tenant beyond both the retained
   * count and the retained age, at most 10,000 rows per tenant per run so
   * that no transaction blocks the event loop for long.
   */
  private pruneHistory(): void {
    if (this.closed) return;
    const { historyChanges, historySeconds } = this.options;
    const cutoffTime = Date.now() - historySeconds * 1000;
    try {
      const tenants = this.statements.tenantsOverHistory.all(
        historyChanges,
      ) as Array<{
        tenant_id: string;
        last_seq: number;
        oldest_seq: number;
      }>;
      for (const tenant of tenants) {
        const keepFromCount = tenant.last_seq - historyChanges + 1;
        const youngest = this.statements.firstChangeSince.get(
          tenant.tenant_id,
          cutoffTime,
        ) as { seq: number } | undefined;
        const keepFromAge = youngest?.seq ?? tenant.last_seq + 1;
        const keepFrom = Math.min(
          keepFromCount,
          keepFromAge,
          tenant.oldest_seq + 10_000,
          this.holds.firstHeldSeq(tenant.tenant_id),
        );
        if (keepFrom <= tenant.oldest_seq) continue;

        this.db
          .transaction(() => {
            this.statements.deleteChangesBefore.run(tenant.tenant_id, keepFrom);
            this.statements.setOldestSeq.run(keepFrom, tenant.tenant_id);
          })
          .immediate();
      }
      this.pruneFailing = false;
    } catch (error) {
      // Retried on the next tick. History only grows meanwhile, so no
      // change is lost; the failure is reported once per outage.
      if (!this.pruneFailing) this.options.onPruneError?.(error);
      this.pruneFailing = true;
    }
  }

  createApiKey(key: NewApiKey): Promise<void> {
    return this.read(() => {
      this.db.transaction(() => this.insertApiKey(key)).immediate();
    });
  }

  createFirstApiKey(key: NewApiKey): Promise<boolean> {
    return this.read(() =>
      this.db
        .transaction(() => {
          if (this.statements.anyApiKey.get() !== undefined) return false;
          this.insertApiKey(key);
          return true;
        })
        .immediate(),
    );
  }

  private insertApiKey({ record, hash }: NewApiKey): void {
    this.statements.insertApiKey.run(
      record.id,
      hash,
      record.tenantId,
      record.role,
      record.scope,
      record.name,
      record.createdAt,
    );
    this.statements.bumpApiKeysVersion.run();
  }

  listApiKeys(): Promise<ApiKeyRecord[]> {
    return this.read(() =>
      (this.statements.listApiKeys.all() as ApiKeyRow[]).map(toApiKey),
    );
  }

  findApiKey(hash: string): Promise<ApiKeyRecord | null> {
    return this.read(() => {
      const row = this.statements.findApiKey.get(hash) as ApiKeyRow | undefined;
      return row ? toApiKey(row) : null;
    });
  }

  revokeApiKey(id: string, at: number): Promise<boolean> {
    return this.read(() =>
      this.db
        .transaction(() => {
          const result = this.statements.revokeApiKey.run(at, id);
          if (result.changes === 0) {
            return this.statements.apiKeyExists.get(id) !== undefined;
          }
          this.statements.bumpApiKeysVersion.run();
          return true;
        })
        .immediate(),
    );
  }

  apiKeysVersion(): Promise<number> {
    return this.read(() => {
      const row = this.statements.apiKeysVersion.get() as { value: string };
      return Number(row.value);
    });
  }

  /**
   * Resolves when a read works and the last commit succeeded. After a
   * failed commit it probes with a small write, except when the store was
   * full: a probe that rewrites a page in place can succeed while new
   * data still cannot fit, so only a successful real write clears that.
   */
  checkWritable(): Promise<void> {
    return this.read(() => {
      this.statements.ping.get();
      if (this.writeFailure === null) return;
      if (this.writeFailure.startsWith("SQLITE_FULL")) {
        throw storeUnavailable("the store is full (SQLITE_FULL)");
      }
      this.db.transaction(() => this.statements.touchMeta.run()).immediate();
      this.writeFailure = null;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.queue.length > 0) this.flush();
    this.closed = true;
    clearInterval(this.pruneTimer);
    this.db.close();
  }
}

function prepareStatements(db: Connection) {
  const prepare = (sql: string): Statement => db.prepare(sql);
  return {
    begin: prepare("BEGIN IMMEDIATE"),
    commit: prepare("COMMIT"),
    rollback: prepare("ROLLBACK"),
    savepoint: prepare("SAVEPOINT write_request"),
    release: prepare("RELEASE write_request"),
    rollbackToSavepoint: prepare("ROLLBACK TO write_request"),
    ping: prepare("SELECT 1"),
    dataVersion: prepare("PRAGMA data_version").pluck(),
    touchMeta: prepare("UPDATE meta SET value = value WHERE name = 'store_id'"),

    getEntry: prepare(
      "SELECT namespace, key, value, version, updated_by, updated_at FROM entries WHERE namespace = ? AND key = ?",
    ),
    listAll: prepare(
      `SELECT namespace, key, value, version, updated_by, updated_at FROM entries
       WHERE namespace = ? AND key > ? AND value IS NOT NULL
       ORDER BY key LIMIT ?`,
    ),
    listPrefix: prepare(
      `SELECT namespace, key, value, version, updated_by, updated_at FROM entries
       WHERE namespace = ? AND key > ? AND key >= ? AND key < CAST(? AS TEXT)
         AND value IS NOT NULL
       ORDER BY key LIMIT ?`,
    ),
    upsertEntry: prepare(
      `INSERT INTO entries (namespace, key, value, version, updated_by, updated_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (namespace, key) DO UPDATE SET
         value = excluded.value, version = excluded.version,
         updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
    ),

    namespaces: prepare(
      `SELECT namespace, live_keys FROM namespace_counts
       WHERE (namespace = ? OR (namespace >= ? AND namespace < ?))
         AND namespace > ?
       ORDER BY namespace LIMIT ?`,
    ),
    incrementCount: prepare(
      `INSERT INTO namespace_counts (namespace, live_keys) VALUES (?, 1)
       ON CONFLICT (namespace) DO UPDATE SET live_keys = live_keys + 1`,
    ),
    decrementCount: prepare(
      "UPDATE namespace_counts SET live_keys = live_keys - 1 WHERE namespace = ?",
    ),
    dropEmptyCount: prepare(
      "DELETE FROM namespace_counts WHERE namespace = ? AND live_keys <= 0",
    ),

    getTenant: prepare(
      "SELECT last_seq, oldest_seq FROM tenants WHERE tenant_id = ?",
    ),
    upsertTenant: prepare(
      `INSERT INTO tenants (tenant_id, last_seq, oldest_seq) VALUES (?, ?, 1)
       ON CONFLICT (tenant_id) DO UPDATE SET last_seq = excluded.last_seq`,
    ),
    tenantsOverHistory: prepare(
      "SELECT tenant_id, last_seq, oldest_seq FROM tenants WHERE last_seq - oldest_seq + 1 > ?",
    ),
    setOldestSeq: prepare(
      "UPDATE tenants SET oldest_seq = ? WHERE tenant_id = ?",
    ),

    insertChange: prepare(
      `INSERT INTO changes (tenant_id, seq, op, namespace, key, value, version, actor, timestamp)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    readChanges: prepare(
      `SELECT tenant_id, seq, op, namespace, key, value, version, actor, timestamp
       FROM changes
       WHERE tenant_id = ? AND seq > ? AND seq <= ?
         AND (namespace = ? OR (namespace >= ? AND namespace < ?))
       ORDER BY seq LIMIT ?`,
    ),
    firstChangeSince: prepare(
      "SELECT seq FROM changes WHERE tenant_id = ? AND timestamp >= ? ORDER BY seq LIMIT 1",
    ),
    deleteChangesBefore: prepare(
      "DELETE FROM changes WHERE tenant_id = ? AND seq < ?",
    ),

    insertApiKey: prepare(
      `INSERT INTO api_keys (id, hash, tenant_id, role, scope, name, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    bumpApiKeysVersion: prepare(
      "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'api_keys_version'",
    ),
    apiKeysVersion: prepare(
      "SELECT value FROM meta WHERE name = 'api_keys_version'",
    ),
    listApiKeys: prepare(
      "SELECT id, tenant_id, role, scope, name, created_at, revoked_at FROM api_keys ORDER BY created_at, id",
    ),
    findApiKey: prepare(
      "SELECT id, tenant_id, role, scope, name, created_at, revoked_at FROM api_keys WHERE hash = ?",
    ),
    revokeApiKey: prepare(
      "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
    ),
    apiKeyExists: prepare("SELECT 1 FROM api_keys WHERE id = ?"),
    anyApiKey: prepare("SELECT 1 FROM api_keys LIMIT 1"),
  };
}
