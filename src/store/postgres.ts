import { createHash } from "node:crypto";

import postgres, { type Sql } from "postgres";

import type { ApiKeyRecord } from "../auth/api-key.js";
import { storeUnavailable } from "../protocol/errors.js";
import { HistoryHolds } from "./history-holds.js";
import { ChangeFeed } from "./postgres-feed.js";
import { withDeadline, withSilenceDeadline } from "./postgres-errors.js";
import {
  insertApiKey,
  insertFirstApiKey,
  revokeApiKey,
  selectApiKey,
  selectApiKeys,
  selectApiKeysVersion,
} from "./postgres-api-keys.js";
import { GroupCommit } from "./postgres-group-commit.js";
import { changeColumns, columns, selectEntries } from "./postgres-queries.js";
import { pruneHistory } from "./postgres-prune.js";
import { migratePostgres } from "./postgres-schema.js";
import { prefixRange } from "./prefix-range.js";
import {
  takeListPage,
  subtreeBounds,
  toChange,
  toEntry,
  type ChangeRow,
  type EntryRow,
} from "./rows.js";
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
import { stateKey } from "./write-plan.js";

export interface PostgresStoreOptions {
  /** The connection URL, without kvstream's `schema` parameter. */
  url: string;
  schema: string;
  historyChanges: number;
  historySeconds: number;
  /** Interval between history prunes, in ms. 0 disables pruning. */
  pruneIntervalMs?: number;
  /** How often every tracked tenant is compared with the database, in ms. */
  catchUpIntervalMs?: number;
  /**
   * Maximum wait for a connection, and for a write to commit, before the
   * call fails with -32001, in ms. A read that has reached a connection
   * may run until the statement timeout (statementTimeoutMs).
   */
  requestTimeoutMs?: number;
  /** Connections for reads and writes, besides the one that listens. */
  maxConnections?: number;
  /** The session name in pg_stat_activity, "kvstream" by default. */
  applicationName?: string;
  /** Called once per failing background task until it succeeds again. */
  onBackgroundError?: (task: string, error: unknown) => void;
  /** Fail with MissingStoreError instead of creating a new, empty store. */
  mustExist?: boolean;
}

/**
 * PostgreSQL's statement_timeout for the store's sessions, in ms. A read
 * on a live connection may take this long before it fails with -32001, so
 * a slow but reachable database is not reported as unavailable.
 */
const statementTimeoutMs = 5000;

/**
 * Returns the NOTIFY channel of a schema. Channels are per database, so
 * each schema gets its own, and a hash keeps the name within PostgreSQL's
 * 63-byte limit.
 */
function channelOf(schema: string): string {
  const digest = createHash("sha256").update(schema).digest("hex");
  return `kvstream_${digest.slice(0, 24)}`;
}

/**
 * The networked store: tables in one PostgreSQL schema, shared by any
 * number of kvstream processes. Writes go through a GroupCommit, which
 * sends NOTIFY with each tenant's new last seq on commit. Every process
 * LISTENs and feeds its watchers from the change table (ChangeFeed).
 */
export class PostgresStore implements Store {
  /** Reads of one connection overlap their round trips up to this bound. */
  readonly maxReadsInFlight = 8;
  private readonly listeners: CommitListener[] = [];
  private readonly holds = new HistoryHolds();
  private readonly feed: ChangeFeed;
  private readonly channel: string;
  private readonly timeoutMs: number;
  /** When the database last replied to a read or probe, in ms since the epoch. */
  private lastReplyAt = 0;
  private probing = false;
  private readonly writes: GroupCommit;
  private listening = false;
  private closed = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly failingTasks = new Set<string>();

  private constructor(
    readonly storeId: string,
    private readonly sql: Sql,
    private readonly listenSql: Sql,
    private readonly options: PostgresStoreOptions,
  ) {
    this.timeoutMs = options.requestTimeoutMs ?? 1000;
    this.channel = channelOf(options.schema);
    this.feed = new ChangeFeed(
      {
        readChanges: (tenantId, afterSeq, uptoSeq, limit) =>
          this.selectChanges(tenantId, afterSeq, uptoSeq, limit),
        lastSeqs: (tenantIds) => this.selectLastSeqs(tenantIds),
      },
      (changes) => {
        for (const listener of this.listeners) listener(changes);
      },
      (error) => {
        if (!this.closed) {
          this.options.onBackgroundError?.("reading changes", error);
        }
      },
    );
    this.writes = new GroupCommit(sql, {
      timeoutMs: this.timeoutMs,
      channel: this.channel,
      onCommitted: (changes) => this.feed.committed(changes),
      onBackgroundError: options.onBackgroundError,
    });
  }

  /**
   * Connects, applies missing migrations and starts listening. Fails when
   * the database cannot be reached within 10 s, or within the
   * request timeout when that is longer.
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    let store: PostgresStore | undefined;
    const connection = {
      application_name: options.applicationName ?? "kvstream",
      search_path: `"${options.schema}"`,
      // Acknowledged writes must survive a crash of the database server.
      synchronous_commit: "on",
      statement_timeout: statementTimeoutMs,
      idle_in_transaction_session_timeout: 10_000,
    };
    const common = {
      connection,
      // A request waits at most requestTimeoutMs for a connection whatever
      // this is. A longer connect timeout lets a loaded machine still open
      // connections.
      connect_timeout: 5,
      fetch_types: false,
      onnotice: () => {},
      types: {
        // bigint columns hold seqs, versions and millisecond timestamps,
        // all below 2^53.
        bigint: {
          to: 20,
          from: [20],
          serialize: (value: number) => String(value),
          parse: (text: string) => Number(text),
        },
      },
    };
    const requestTimeoutMs = options.requestTimeoutMs ?? 1000;
    const sql = postgres(options.url, {
      ...common,
      max: options.maxConnections ?? 4,
      idle_timeout: 60,
      // A call that gets no connection within the request timeout fails
      // with QUEUE_TIMEOUT and is never sent, which is how a database that
      // cannot be connected to shows. A dropped connection fails its
      // queries at once in the driver.
      queue_timeout: requestTimeoutMs / 1000,
      // A backstop for a database that goes silent on an open connection,
      // where no statement_timeout error can arrive. It includes the wait
      // for a connection.
      query_timeout: (statementTimeoutMs + requestTimeoutMs) / 1000,
    });
    const listenSql = postgres(options.url, {
      ...common,
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      onnotify: (channel: string, payload: string) =>
        store?.onNotification(channel, payload),
      onclose: () => store?.onListenClosed(),
    });

    // Opening is not a request, so it may take longer than one: a process
    // that starts on a loaded machine should not exit for a slow connect.
    // So the migration runs on a connection of its own, without the
    // pool's queue_timeout.
    const openTimeoutMs = Math.max(requestTimeoutMs, 10_000);
    const openSql = postgres(options.url, { ...common, max: 1 });
    try {
      await withDeadline(
        migratePostgres(openSql, options.schema, {
          mustExist: options.mustExist,
        }),
        openTimeoutMs,
      );
      const [row] = await withDeadline(
        openSql<
          Array<{ value: string }>
        >`SELECT value FROM meta WHERE name = 'store_id'`,
        openTimeoutMs,
      );
      store = new PostgresStore(row.value, sql, listenSql, options);
      await store.listen(openTimeoutMs);
    } catch (error) {
      await Promise.all([
        sql.end({ timeout: 1 }),
        listenSql.end({ timeout: 1 }),
      ]);
      throw error;
    } finally {
      await openSql.end({ timeout: 1 });
    }
    store.startTimers();
    return store;
  }

  private startTimers(): void {
    const catchUpMs = this.options.catchUpIntervalMs ?? 1000;
    const pruneMs = this.options.pruneIntervalMs ?? 5000;
    this.timers.push(setInterval(() => void this.tick(), catchUpMs));
    this.timers.push(
      setInterval(() => this.probeLiveness(), Math.max(10, this.timeoutMs / 4)),
    );
    if (pruneMs > 0) {
      this.timers.push(setInterval(() => void this.prune(), pruneMs));
    }
    for (const timer of this.timers) timer.unref();
  }

  /**
   * Sends a trivial query on the listening session, which no request
   * uses, so that lastReplyAt separates a database that replies, however
   * busy the pool is, from one that replies to nothing.
   */
  private probeLiveness(): void {
    if (this.probing || this.closed) return;
    this.probing = true;
    this.listenSql`SELECT 1`
      .then(
        () => {
          this.lastReplyAt = Date.now();
        },
        () => {},
      )
      .finally(() => {
        this.probing = false;
      });
  }

  /** Runs a background task, reporting its first failure of a streak. */
  private async background(task: string, run: () => Promise<void>) {
    try {
      await run();
      this.failingTasks.delete(task);
    } catch (error) {
      if (this.closed) return;
      if (!this.failingTasks.has(task)) {
        this.options.onBackgroundError?.(task, error);
      }
      this.failingTasks.add(task);
    }
  }

  private async listen(timeoutMs = this.timeoutMs): Promise<void> {
    await withDeadline(
      this.listenSql.unsafe(`LISTEN "${this.channel}"`),
      timeoutMs,
    );
    this.listening = true;
  }

  /**
   * Listens again after the listening connection dropped, then compares
   * every tracked tenant with the database, since notifications sent
   * while it was down are lost. The comparison also runs when listening
   * works, as a safety net.
   */
  private async tick(): Promise<void> {
    if (this.closed) return;
    if (!this.listening)
      await this.background("listening", () => this.listen());
    if (!this.listening) return;
    await this.background("catching up", () =>
      withDeadline(this.feed.catchUp(), this.timeoutMs),
    );
  }

  private onListenClosed(): void {
    this.listening = false;
  }

  private onNotification(channel: string, payload: string): void {
    if (channel !== this.channel) return;
    const colon = payload.indexOf(":");
    const lastSeq = Number(payload.slice(0, colon));
    const tenantId = payload.slice(colon + 1);
    if (colon < 1 || !Number.isSafeInteger(lastSeq)) return;
    this.feed.notified(tenantId, lastSeq);
  }

  /**
   * Runs a read. The driver fails it after requestTimeoutMs without a
   * connection, and PostgreSQL after statementTimeoutMs of running. A read
   * also fails once the database has replied to nothing, neither a read nor
   * the liveness probe, for requestTimeoutMs. So a database that stopped
   * answering, such as one behind a dropped network path where no error
   * arrives, fails reads within about that time, while a slow but
   * answering one lets them run.
   */
  private read<T>(run: () => Promise<T>): Promise<T> {
    if (this.closed) {
      return Promise.reject(storeUnavailable("the store is closed"));
    }
    const work = run().then((result) => {
      this.lastReplyAt = Date.now();
      return result;
    });
    return withSilenceDeadline(work, {
      silenceMs: this.timeoutMs,
      maxMs: statementTimeoutMs + 2 * this.timeoutMs,
      lastReplyAt: () => this.lastReplyAt,
    });
  }

  get(namespace: string, key: string): Promise<StoredEntry | null> {
    return this.read(async () => {
      const [row] = await this.sql<EntryRow[]>`
        SELECT ${this.sql.unsafe(columns)} FROM entries
        WHERE namespace = ${namespace} AND key = ${key}
      `;
      return row && row.value !== null ? toEntry(row) : null;
    });
  }

  getMany(
    entries: ReadonlyArray<{ namespace: string; key: string }>,
  ): Promise<Array<StoredEntry | null>> {
    return this.read(async () => {
      const rows = await selectEntries(this.sql, entries);
      return entries.map(({ namespace, key }) => {
        const row = rows.get(stateKey(namespace, key));
        return row && row.value !== null ? toEntry(row) : null;
      });
    });
  }

  list(options: {
    namespace: string;
    prefix: string;
    afterKey: string | null;
    limit: number;
    maxBytes: number;
  }): Promise<Page<StoredEntry>> {
    return this.read(async () => {
      const { namespace, prefix, limit, maxBytes } = options;
      const sql = this.sql;
      const range = prefixRange(prefix);
      const prefixCondition =
        prefix === ""
          ? sql``
          : range.below === null
            ? sql`AND key >= ${range.from}`
            : sql`AND key >= ${range.from} AND key < ${range.below}`;
      const rows = await sql<EntryRow[]>`
        SELECT ${sql.unsafe(columns)} FROM entries
        WHERE namespace = ${namespace} AND key > ${options.afterKey ?? ""}
          ${prefixCondition} AND value IS NOT NULL
        ORDER BY key LIMIT ${limit + 1}
      `;

      return takeListPage(rows, limit, maxBytes);
    });
  }

  namespaces(options: {
    namespace: string;
    afterNamespace: string | null;
    limit: number;
  }): Promise<Page<NamespaceCount>> {
    return this.read(async () => {
      const bounds = subtreeBounds(options.namespace);
      const rows = await this.sql<
        Array<{ namespace: string; live_keys: number }>
      >`
        SELECT namespace, live_keys FROM namespace_counts
        WHERE (namespace = ${bounds.ns}
               OR (namespace >= ${bounds.below} AND namespace < ${bounds.beyond}))
          AND namespace > ${options.afterNamespace ?? ""}
        ORDER BY namespace LIMIT ${options.limit + 1}
      `;
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
    return this.writes.write(request);
  }

  onCommit(listener: CommitListener): void {
    this.listeners.push(listener);
  }

  /**
   * Returns the last seq this process delivered to its commit listeners,
   * which is the seq a subscription starts after.
   */
  latestSeq(tenantId: string): Promise<number> {
    return this.read(() =>
      this.feed.latestSeq(tenantId, async () => {
        const lastSeqs = await this.selectLastSeqs([tenantId]);
        return lastSeqs.get(tenantId) ?? 0;
      }),
    );
  }

  private async selectLastSeqs(tenantIds: string[]) {
    const rows = await this.sql<Array<{ tenant_id: string; last_seq: number }>>`
      SELECT tenant_id, last_seq FROM tenants
      WHERE tenant_id IN (
        SELECT value FROM json_array_elements_text(${JSON.stringify(tenantIds)}::text::json)
      )
    `;
    return new Map(rows.map((row) => [row.tenant_id, row.last_seq]));
  }

  historyBounds(tenantId: string): Promise<HistoryBounds> {
    return this.read(async () => {
      const [row] = await this.sql<
        Array<{ last_seq: number; oldest_seq: number }>
      >`SELECT last_seq, oldest_seq FROM tenants WHERE tenant_id = ${tenantId}`;
      if (!row) return { oldestSeq: 1, latestSeq: 0 };
      return { oldestSeq: row.oldest_seq, latestSeq: row.last_seq };
    });
  }

  /** Keeps history from this process's pruning only (see pruneHistory). */
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
    return this.read(async () => {
      const bounds = subtreeBounds(options.namespace);
      const rows = await this.sql<ChangeRow[]>`
        SELECT ${this.sql.unsafe(changeColumns)} FROM changes
        WHERE tenant_id = ${options.tenantId}
          AND seq > ${options.afterSeq} AND seq <= ${options.uptoSeq}
          AND (namespace = ${bounds.ns}
               OR (namespace >= ${bounds.below} AND namespace < ${bounds.beyond}))
        ORDER BY seq LIMIT ${options.limit}
      `;
      return rows.map(toChange);
    });
  }

  private async selectChanges(
    tenantId: string,
    afterSeq: number,
    uptoSeq: number,
    limit: number,
  ): Promise<Change[]> {
    const rows = await withDeadline(
      this.sql<ChangeRow[]>`
        SELECT ${this.sql.unsafe(changeColumns)} FROM changes
        WHERE tenant_id = ${tenantId} AND seq > ${afterSeq} AND seq <= ${uptoSeq}
        ORDER BY seq LIMIT ${limit}
      `,
      this.timeoutMs,
    );
    return rows.map(toChange);
  }

  private prune(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.background("pruning change history", () =>
      pruneHistory(this.sql, this.holds, this.options),
    );
  }

  createApiKey(key: NewApiKey): Promise<void> {
    return this.read(() => insertApiKey(this.sql, key));
  }

  createFirstApiKey(key: NewApiKey): Promise<boolean> {
    return this.read(() => insertFirstApiKey(this.sql, key));
  }

  listApiKeys(): Promise<ApiKeyRecord[]> {
    return this.read(() => selectApiKeys(this.sql));
  }

  findApiKey(hash: string): Promise<ApiKeyRecord | null> {
    return this.read(() => selectApiKey(this.sql, hash));
  }

  revokeApiKey(id: string, at: number): Promise<boolean> {
    return this.read(() => revokeApiKey(this.sql, id, at));
  }

  apiKeysVersion(): Promise<number> {
    return this.read(() => selectApiKeysVersion(this.sql));
  }

  /**
   * Resolves when the database responds, accepts writes (it is not a
   * standby or read-only) and, after a failed commit, a small write
   * succeeds.
   */
  checkWritable(): Promise<void> {
    return this.read(async () => {
      const [row] = await this.sql<Array<{ read_only: string }>>`
        SELECT current_setting('transaction_read_only') AS read_only
      `;
      if (row.read_only === "on") {
        throw storeUnavailable(
          "the PostgreSQL session is read-only (a standby, or default_transaction_read_only)",
        );
      }
      if (!this.writes.writeFailing) return;
      await this.sql`UPDATE meta SET value = value WHERE name = 'store_id'`;
      this.writes.writeFailing = false;
    });
  }

  /** Lets the running and queued writes commit, then disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const timer of this.timers) clearInterval(timer);
    await this.writes.drain();
    this.closed = true;
    await Promise.all([
      this.sql.end({ timeout: 1 }),
      this.listenSql.end({ timeout: 1 }),
    ]);
  }
}
