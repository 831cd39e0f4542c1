import { createHash } from "node:crypto";

import postgres, { type Sql, type TransactionSql } from "postgres";

import type { ApiKeyRecord } from "../auth/api-key.js";
import { RpcError, storeUnavailable } from "../protocol/errors.js";
import { HistoryHolds } from "./history-holds.js";
import { ChangeFeed } from "./postgres-feed.js";
import {
  isUnavailable,
  toStoreError,
  withDeadline,
} from "./postgres-errors.js";
import { migratePostgres } from "./postgres-schema.js";
import { prefixRange } from "./prefix-range.js";
import {
  estimateItemBytes,
  subtreeBounds,
  toApiKey,
  toChange,
  toEntry,
  type ApiKeyRow,
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
import { planWrites, stateKey, type KeyState } from "./write-plan.js";

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
  /** Maximum wait for any store call before it fails with -32001, in ms. */
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

interface PendingWrite {
  request: WriteRequest;
  resolve: (changes: Change[]) => void;
  reject: (error: unknown) => void;
  /** Set when the caller stopped waiting, so the write is not started. */
  expired: boolean;
}

/** Requests in one group commit, at most. */
const maxBatchRequests = 256;
/**
 * Time after which a running commit's session is terminated. It is twice
 * the statement timeout, so a single slow statement does not trip it.
 */
const commitWatchdogMs = 10_000;

const columns = "namespace, key, value, version, updated_by, updated_at";
const changeColumns =
  "tenant_id, seq, op, namespace, key, value, version, actor, timestamp";
const apiKeyColumns =
  "id, tenant_id, role, scope, name, created_at, revoked_at";

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
 * number of kvstream processes. Writes queued while a commit runs share
 * the next transaction (group commit). Each transaction locks the rows of
 * its tenants in the tenants table and takes the next seqs there. It locks
 * them in tenant id order, so two processes cannot deadlock. It then sends
 * NOTIFY with each tenant's new last seq, which PostgreSQL delivers only
 * after the commit. Every process LISTENs and feeds its watchers from the
 * change table (ChangeFeed).
 */
export class PostgresStore implements Store {
  /** Reads of one connection overlap their round trips up to this bound. */
  readonly maxReadsInFlight = 8;
  private readonly listeners: CommitListener[] = [];
  private readonly holds = new HistoryHolds();
  private readonly feed: ChangeFeed;
  private readonly channel: string;
  private readonly timeoutMs: number;
  private queue: PendingWrite[] = [];
  private flushScheduled = false;
  private committing: Promise<void> | null = null;
  /** True after a commit failed for an outage, until one succeeds. */
  private writeFailing = false;
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
      statement_timeout: 5000,
      idle_in_transaction_session_timeout: 10_000,
    };
    const common = {
      connection,
      // Requests fail after requestTimeoutMs whatever this is. A longer
      // connect timeout lets a loaded machine still open connections.
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
    const sql = postgres(options.url, {
      ...common,
      max: options.maxConnections ?? 4,
      idle_timeout: 60,
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
    const openTimeoutMs = Math.max(options.requestTimeoutMs ?? 1000, 10_000);
    try {
      await withDeadline(
        migratePostgres(sql, options.schema, {
          mustExist: options.mustExist,
        }),
        openTimeoutMs,
      );
      const [row] = await withDeadline(
        sql<
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
    }
    store.startTimers();
    return store;
  }

  private startTimers(): void {
    const catchUpMs = this.options.catchUpIntervalMs ?? 1000;
    const pruneMs = this.options.pruneIntervalMs ?? 5000;
    this.timers.push(setInterval(() => void this.tick(), catchUpMs));
    if (pruneMs > 0) {
      this.timers.push(setInterval(() => void this.pruneHistory(), pruneMs));
    }
    for (const timer of this.timers) timer.unref();
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

  private read<T>(run: () => Promise<T>): Promise<T> {
    if (this.closed) {
      return Promise.reject(storeUnavailable("the store is closed"));
    }
    return withDeadline(run(), this.timeoutMs);
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
      const rows = await this.selectEntries(this.sql, entries);
      return entries.map(({ namespace, key }) => {
        const row = rows.get(stateKey(namespace, key));
        return row && row.value !== null ? toEntry(row) : null;
      });
    });
  }

  private async selectEntries(
    sql: Sql | TransactionSql,
    keys: ReadonlyArray<{ namespace: string; key: string }>,
  ): Promise<Map<string, EntryRow>> {
    const rows = await sql<EntryRow[]>`
      SELECT ${sql.unsafe(columns.replace(/(\w+)/g, "e.$1"))}
      FROM entries e
      JOIN json_to_recordset(${JSON.stringify(keys)}::text::json)
        AS k(namespace text, key text)
        ON e.namespace = k.namespace AND e.key = k.key
    `;
    return new Map(rows.map((row) => [stateKey(row.namespace, row.key), row]));
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

      const items: StoredEntry[] = [];
      let bytes = 0;
      let more = false;
      for (const row of rows) {
        const size = estimateItemBytes(row);
        if (
          items.length === limit ||
          (items.length > 0 && bytes + size > maxBytes)
        ) {
          more = true;
          break;
        }
        bytes += size;
        items.push(toEntry(row));
      }
      return { items, more };
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
    const pending = { request, expired: false } as PendingWrite;
    const committed = new Promise<Change[]>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    });
    this.queue.push(pending);
    this.scheduleFlush();
    const answered = withDeadline(committed, this.timeoutMs);
    answered.catch(() => {
      pending.expired = true;
    });
    return answered;
  }

  onCommit(listener: CommitListener): void {
    this.listeners.push(listener);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.committing) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /**
   * Starts one transaction with the writes queued so far. One commit runs
   * at a time per process, so the writes of one connection commit in the
   * order they were sent. The writes that arrive meanwhile form the next
   * group.
   */
  // TODO: commits of different tenants could run in parallel on several
  // connections. One at a time bounds a process's write rate by the group
  // size divided by the commit latency.
  private flush(): void {
    if (this.committing) return;
    const live = this.queue.filter((pending) => !pending.expired);
    const batch = live.slice(0, maxBatchRequests);
    this.queue = live.slice(maxBatchRequests);
    if (batch.length === 0) return;
    this.committing = this.commit(batch).finally(() => {
      this.committing = null;
      if (this.queue.length > 0) this.scheduleFlush();
    });
  }

  private async commit(batch: PendingWrite[]): Promise<void> {
    const requests = batch.map((pending) => pending.request);
    let plan: ReturnType<typeof planWrites>;
    try {
      plan = await this.runWithWatchdog((tx) => this.applyBatch(tx, requests));
    } catch (error) {
      if (isUnavailable(error)) this.writeFailing = true;
      const failure = toStoreError(error);
      for (const pending of batch) pending.reject(failure);
      return;
    }

    this.writeFailing = false;
    batch.forEach((pending, index) => {
      const outcome = plan.outcomes[index];
      if (outcome instanceof RpcError) pending.reject(outcome);
      else pending.resolve(outcome);
    });
    if (plan.changes.length > 0) this.feed.committed(plan.changes);
  }

  /**
   * Runs `work` in a transaction, and terminates the transaction's session
   * if it has not finished after commitWatchdogMs. Writes queue behind a
   * running commit, so one commit that never settles would stop every
   * later write of this process.
   */
  // NOTE: under the outage test (sessions terminated during a load), a
  // commit once stayed open for minutes: its session waited for the
  // driver's next message after the first statement. The cause in the
  // driver was not found. Terminating the session rolls the transaction
  // back, so the writes of that group are not applied; their callers got
  // -32001 after 1 s already.
  private async runWithWatchdog<T>(
    work: (tx: TransactionSql) => Promise<T>,
  ): Promise<T> {
    let backendPid: number | undefined;
    const done = this.sql.begin(async (tx) => {
      const [row] = await tx.unsafe<Array<{ pid: number }>>(
        "SELECT pg_backend_pid() AS pid",
      );
      backendPid = row.pid;
      return work(tx);
    });
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        void this.terminateSession(backendPid).finally(() =>
          reject(
            storeUnavailable(
              `a commit did not finish within ${commitWatchdogMs} ms, so its session was terminated`,
            ),
          ),
        );
      }, commitWatchdogMs);
    });
    try {
      return (await Promise.race([done, stuck])) as T;
    } finally {
      clearTimeout(timer);
    }
  }

  private async terminateSession(pid: number | undefined): Promise<void> {
    this.options.onBackgroundError?.(
      "committing",
      new Error(
        `a commit has run for ${commitWatchdogMs} ms; terminating its session (backend pid ${pid ?? "unknown"})`,
      ),
    );
    if (pid === undefined) return;
    try {
      await withDeadline(
        this.sql`SELECT pg_terminate_backend(${pid})`,
        this.timeoutMs,
      );
    } catch (error) {
      this.options.onBackgroundError?.("terminating a stuck commit", error);
    }
  }

  /** Writes one group commit inside the open transaction `tx`. */
  private async applyBatch(
    tx: TransactionSql,
    requests: readonly WriteRequest[],
  ) {
    const tenantIds = [
      ...new Set(requests.map((request) => request.tenantId)),
    ].sort(compareBytes);
    // Locks the tenants' rows, created if missing, in tenant id order.
    const tenantRows = await tx<Array<{ tenant_id: string; last_seq: number }>>`
      INSERT INTO tenants (tenant_id, last_seq, oldest_seq)
      SELECT tenant_id, 0, 1
      FROM json_to_recordset(${JSON.stringify(tenantIds.map((tenant_id) => ({ tenant_id })))}::text::json)
        AS t(tenant_id text)
      ORDER BY tenant_id COLLATE "C"
      ON CONFLICT (tenant_id) DO UPDATE SET last_seq = tenants.last_seq
      RETURNING tenant_id, last_seq
    `;
    const lastSeqs = new Map(
      tenantRows.map((row) => [row.tenant_id, row.last_seq]),
    );

    const keys = new Map<string, { namespace: string; key: string }>();
    for (const request of requests) {
      for (const { namespace, key } of request.operations) {
        keys.set(stateKey(namespace, key), { namespace, key });
      }
    }
    const rows = await this.selectEntries(tx, [...keys.values()]);
    const stored = new Map<string, KeyState>();
    for (const [id, row] of rows) {
      stored.set(id, { value: row.value, version: row.version });
    }

    const plan = planWrites(requests, stored, lastSeqs, Date.now());
    if (plan.changes.length === 0) return plan;
    await Promise.all([
      tx`
        INSERT INTO entries (${tx.unsafe(columns)})
        SELECT ${tx.unsafe(columns)}
        FROM json_to_recordset(${JSON.stringify(plan.entries)}::text::json)
          AS e(namespace text, key text, value text, version bigint,
               updated_by text, updated_at bigint)
        ON CONFLICT (namespace, key) DO UPDATE SET
          value = excluded.value, version = excluded.version,
          updated_by = excluded.updated_by, updated_at = excluded.updated_at
      `,
      tx`
        INSERT INTO changes (${tx.unsafe(changeColumns)})
        SELECT ${tx.unsafe(changeColumns)}
        FROM json_to_recordset(${JSON.stringify(plan.changes.map(toChangeRow))}::text::json)
          AS c(tenant_id text, seq bigint, op text, namespace text, key text,
               value text, version bigint, actor text, timestamp bigint)
      `,
      this.applyCountDeltas(tx, plan.countDeltas),
      tx`
        UPDATE tenants SET last_seq = u.last_seq
        FROM json_to_recordset(${JSON.stringify(toTenantSeqs(plan.lastSeqs))}::text::json)
          AS u(tenant_id text, last_seq bigint)
        WHERE tenants.tenant_id = u.tenant_id
      `,
      // Delivered to listeners only if the transaction commits. A full
      // notification queue fails the commit, so no change goes unsignalled.
      tx`
        SELECT pg_notify(${this.channel}, u.last_seq || ':' || u.tenant_id)
        FROM json_to_recordset(${JSON.stringify(toTenantSeqs(plan.lastSeqs))}::text::json)
          AS u(tenant_id text, last_seq bigint)
      `,
    ]);
    return plan;
  }

  private async applyCountDeltas(
    tx: TransactionSql,
    deltas: ReadonlyMap<string, number>,
  ): Promise<void> {
    if (deltas.size === 0) return;
    const rows = JSON.stringify(
      [...deltas].map(([namespace, delta]) => ({ namespace, delta })),
    );
    await tx`
      INSERT INTO namespace_counts (namespace, live_keys)
      SELECT namespace, delta
      FROM json_to_recordset(${rows}::text::json) AS d(namespace text, delta bigint)
      ORDER BY namespace COLLATE "C"
      ON CONFLICT (namespace) DO UPDATE
        SET live_keys = namespace_counts.live_keys + excluded.live_keys
    `;
    await tx`
      DELETE FROM namespace_counts
      WHERE namespace IN (
        SELECT namespace FROM json_to_recordset(${rows}::text::json)
          AS d(namespace text, delta bigint)
      ) AND live_keys <= 0
    `;
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
  private pruneHistory(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.background("pruning change history", async () => {
      const { historyChanges, historySeconds } = this.options;
      const cutoffTime = Date.now() - historySeconds * 1000;
      const tenants = await this.sql<
        Array<{ tenant_id: string; last_seq: number; oldest_seq: number }>
      >`
        SELECT tenant_id, last_seq, oldest_seq FROM tenants
        WHERE last_seq - oldest_seq + 1 > ${historyChanges}
      `;
      for (const tenant of tenants) {
        const [youngest] = await this.sql<Array<{ seq: number }>>`
          SELECT seq FROM changes
          WHERE tenant_id = ${tenant.tenant_id} AND timestamp >= ${cutoffTime}
          ORDER BY seq LIMIT 1
        `;
        const keepFrom = Math.min(
          tenant.last_seq - historyChanges + 1,
          youngest?.seq ?? tenant.last_seq + 1,
          tenant.oldest_seq + 10_000,
          this.holds.firstHeldSeq(tenant.tenant_id),
        );
        if (keepFrom <= tenant.oldest_seq) continue;

        await this.sql.begin(async (tx) => {
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
    });
  }

  createApiKey({ record, hash }: NewApiKey): Promise<void> {
    return this.read(async () => {
      await this.sql.begin(async (tx) => {
        await tx`
          INSERT INTO api_keys (id, hash, tenant_id, role, scope, name, created_at)
          VALUES (${record.id}, ${hash}, ${record.tenantId}, ${record.role},
                  ${record.scope}, ${record.name}, ${record.createdAt})
        `;
        await this.bumpApiKeysVersion(tx);
      });
    });
  }

  private async bumpApiKeysVersion(tx: TransactionSql): Promise<void> {
    await tx`
      UPDATE meta SET value = (value::bigint + 1)::text
      WHERE name = 'api_keys_version'
    `;
  }

  listApiKeys(): Promise<ApiKeyRecord[]> {
    return this.read(async () => {
      const rows = await this.sql<ApiKeyRow[]>`
        SELECT ${this.sql.unsafe(apiKeyColumns)} FROM api_keys
        ORDER BY created_at, id
      `;
      return rows.map(toApiKey);
    });
  }

  findApiKey(hash: string): Promise<ApiKeyRecord | null> {
    return this.read(async () => {
      const [row] = await this.sql<ApiKeyRow[]>`
        SELECT ${this.sql.unsafe(apiKeyColumns)} FROM api_keys
        WHERE hash = ${hash}
      `;
      return row ? toApiKey(row) : null;
    });
  }

  revokeApiKey(id: string, at: number): Promise<boolean> {
    return this.read(() =>
      this.sql.begin(async (tx) => {
        const result = await tx`
          UPDATE api_keys SET revoked_at = ${at}
          WHERE id = ${id} AND revoked_at IS NULL
        `;
        if (result.count === 0) {
          const found = await tx`SELECT 1 FROM api_keys WHERE id = ${id}`;
          return found.length > 0;
        }
        await this.bumpApiKeysVersion(tx);
        return true;
      }),
    );
  }

  /**
   * Reads one row by primary key: cheap enough for the key registry's
   * four polls a second per process.
   */
  apiKeysVersion(): Promise<number> {
    return this.read(async () => {
      const [row] = await this.sql<Array<{ value: string }>>`
        SELECT value FROM meta WHERE name = 'api_keys_version'
      `;
      return Number(row.value);
    });
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
      if (!this.writeFailing) return;
      await this.sql`UPDATE meta SET value = value WHERE name = 'store_id'`;
      this.writeFailing = false;
    });
  }

  /** Lets the running and queued writes commit, then disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const timer of this.timers) clearInterval(timer);
    while (this.committing || this.queue.some((pending) => !pending.expired)) {
      if (!this.committing) this.flush();
      await this.committing;
    }
    this.closed = true;
    await Promise.all([
      this.sql.end({ timeout: 1 }),
      this.listenSql.end({ timeout: 1 }),
    ]);
  }
}

function toChangeRow(change: Change): ChangeRow {
  return {
    tenant_id: change.tenantId,
    seq: change.seq,
    op: change.op,
    namespace: change.namespace,
    key: change.key,
    value: change.valueJson ?? null,
    version: change.version,
    actor: change.actor,
    timestamp: change.timestamp,
  };
}

function toTenantSeqs(lastSeqs: ReadonlyMap<string, number>) {
  return [...lastSeqs].map(([tenant_id, last_seq]) => ({
    tenant_id,
    last_seq,
  }));
}

/** Orders strings by UTF-8 bytes, like the "C" collation. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
