import postgres, { type Sql, type TransactionSql } from "postgres";

import { RpcError, storeUnavailable } from "../protocol/errors.js";
import {
  formatDriverError,
  isUnavailable,
  withDeadline,
} from "./postgres-errors.js";
import { changeColumns, columns, selectEntries } from "./postgres-queries.js";
import type { ChangeRow } from "./rows.js";
import type { Change, WriteRequest } from "./store.js";
import { planWrites, stateKey, type KeyState } from "./write-plan.js";

export interface GroupCommitOptions {
  /**
   * Time from a write's arrival until it is rejected with -32001 unless
   * its transaction committed, in ms.
   */
  timeoutMs: number;
  /** The NOTIFY channel that each commit signals. */
  channel: string;
  /** Called with the changes of each commit that changed something. */
  onCommitted: (changes: Change[]) => void;
  onBackgroundError?: (task: string, error: unknown) => void;
}

/** The progress of one group commit's transaction. */
interface Group {
  /** The earliest deadline of the group's writes, in performance.now() ms. */
  deadline: number;
  /**
   * Set when a write timed out before COMMIT was sent. The transaction
   * then rolls back and never sends COMMIT.
   */
  doomed: boolean;
  /** Set just before the driver sends COMMIT. */
  commitSent: boolean;
}

interface PendingWrite {
  request: WriteRequest;
  resolve: (changes: Change[]) => void;
  reject: (error: unknown) => void;
  /** In performance.now() ms. */
  deadline: number;
  /** The deadline timer, then the timer that waits for the COMMIT's outcome. */
  timer?: NodeJS.Timeout;
  /** The group commit that contains the write, once it has started. */
  group: Group | null;
  settled: boolean;
}

/** Requests in one group commit, at most. */
const maxBatchRequests = 256;
/**
 * Time after which a running commit's session is terminated. It is twice
 * the statement timeout, so a single slow statement does not trip it.
 */
const commitWatchdogMs = 10_000;

/**
 * The write path of the PostgreSQL store. Writes queued while a commit
 * runs share the next transaction (group commit). Each transaction locks
 * the rows of its tenants in the tenants table and takes the next seqs
 * there. It locks them in tenant id order, so two processes cannot
 * deadlock. It then sends NOTIFY with each tenant's new last seq, which
 * PostgreSQL delivers only after the commit.
 *
 * A write answered with -32001 is not applied, unless `data.reason` says
 * that the outcome is unknown. A write still queued at its deadline is
 * dropped and never sent. A write whose transaction has not sent COMMIT
 * dooms the group, so the transaction rolls back and every write of the
 * group gets -32001. A write whose COMMIT is in flight waits up to one
 * more timeoutMs for the outcome. If none arrives, or the connection
 * fails first, it gets -32001 with a reason that says the outcome is
 * unknown. The transaction's statement_timeout is the time left until
 * the group's earliest deadline, so PostgreSQL itself ends a transaction
 * that waits on a lock, and releases the locks it holds.
 */
export class GroupCommit {
  private queue: PendingWrite[] = [];
  private flushScheduled = false;
  private committing: Promise<void> | null = null;
  /** True after a commit failed for an outage, until one succeeds. */
  writeFailing = false;
  private readonly timeoutMs: number;
  private readonly channel: string;

  constructor(
    private readonly sql: Sql,
    private readonly options: GroupCommitOptions,
  ) {
    this.timeoutMs = options.timeoutMs;
    this.channel = options.channel;
  }

  /**
   * Queues `request` for the next commit. Rejects with -32001 when no
   * commit settles it within timeoutMs (see the class comment for what
   * that -32001 promises).
   */
  write(request: WriteRequest): Promise<Change[]> {
    let resolve!: PendingWrite["resolve"];
    let reject!: PendingWrite["reject"];
    const answered = new Promise<Change[]>((onResolve, onReject) => {
      resolve = onResolve;
      reject = onReject;
    });
    const pending: PendingWrite = {
      request,
      resolve,
      reject,
      deadline: performance.now() + this.timeoutMs,
      group: null,
      settled: false,
    };
    pending.timer = setTimeout(() => this.expire(pending), this.timeoutMs);
    this.queue.push(pending);
    this.scheduleFlush();
    return answered;
  }

  /** Lets the running and queued writes commit. */
  async drain(): Promise<void> {
    while (this.committing || this.queue.some((pending) => !pending.settled)) {
      if (!this.committing) this.flush();
      await this.committing;
    }
  }

  /**
   * Rejects a write whose deadline passed, or gives it more time when its
   * COMMIT is in flight.
   */
  private expire(pending: PendingWrite): void {
    if (pending.settled) return;
    const group = pending.group;
    if (group === null) {
      this.settle(
        pending,
        storeUnavailable(
          `the write did not reach PostgreSQL within ${this.timeoutMs} ms (timed out) and was not applied`,
        ),
      );
      return;
    }
    if (!group.commitSent) {
      group.doomed = true;
      this.settle(
        pending,
        storeUnavailable(
          `the write did not commit within ${this.timeoutMs} ms (timed out); its transaction rolls back, so it was not applied`,
        ),
      );
      return;
    }
    pending.timer = setTimeout(
      () =>
        this.settle(
          pending,
          storeUnavailable(
            `PostgreSQL did not confirm the COMMIT within ${2 * this.timeoutMs} ms (timed out), so the outcome is unknown: read the key before retrying`,
          ),
        ),
      this.timeoutMs,
    );
  }

  /** Resolves with a Change[] outcome, or rejects with any other. */
  private settle(pending: PendingWrite, outcome: unknown): void {
    if (pending.settled) return;
    pending.settled = true;
    clearTimeout(pending.timer);
    if (Array.isArray(outcome)) pending.resolve(outcome);
    else pending.reject(outcome);
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
    const live = this.queue.filter((pending) => !pending.settled);
    const batch = live.slice(0, maxBatchRequests);
    this.queue = live.slice(maxBatchRequests);
    if (batch.length === 0) return;
    const group: Group = {
      deadline: Math.min(...batch.map((pending) => pending.deadline)),
      doomed: false,
      commitSent: false,
    };
    for (const pending of batch) pending.group = group;
    this.committing = this.commit(batch, group).finally(() => {
      this.committing = null;
      if (this.queue.length > 0) this.scheduleFlush();
    });
  }

  private async commit(batch: PendingWrite[], group: Group): Promise<void> {
    const requests = batch.map((pending) => pending.request);
    let plan: ReturnType<typeof planWrites>;
    try {
      plan = await this.runWithWatchdog(group, (tx) =>
        this.applyBatch(tx, group, requests),
      );
    } catch (error) {
      if (isUnavailable(error)) this.writeFailing = true;
      const failure = toWriteFailure(group, error);
      for (const pending of batch) this.settle(pending, failure);
      return;
    }

    this.writeFailing = false;
    batch.forEach((pending, index) => {
      this.settle(pending, plan.outcomes[index]);
    });
    if (plan.changes.length > 0) this.options.onCommitted(plan.changes);
  }

  /**
   * Runs `work` in a transaction, and terminates the transaction's session
   * if it has not finished after commitWatchdogMs. Writes queue behind a
   * running commit, so one commit that never settles would stop every
   * later write of this process. The transaction sends COMMIT only if
   * `group` is not doomed when `work` returns.
   */
  // NOTE: with postgres.js 3.4.10, under the outage test (sessions
  // terminated during a load), a commit once stayed open for minutes: its
  // session waited for the driver's next message after the first
  // statement. The cause in the driver was not found. Terminating the session rolls the transaction
  // back, so the writes of that group are not applied; their callers got
  // -32001 after 1 s already.
  private async runWithWatchdog<T>(
    group: Group,
    work: (tx: TransactionSql) => Promise<T>,
  ): Promise<T> {
    let backendPid: number | undefined;
    const done = this.sql.begin(async (tx) => {
      const [row] = await tx<Array<{ pid: number }>>`
        SELECT pg_backend_pid() AS pid,
          set_config('statement_timeout', ${String(remainingMs(group))}, true)
      `;
      backendPid = row.pid;
      const result = await work(tx);
      // The driver sends COMMIT once this callback returns. The check and
      // the flag run in one synchronous step, so a deadline either dooms
      // the group before this point or finds COMMIT in flight after it.
      throwIfDoomed(group);
      group.commitSent = true;
      return result;
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
    group: Group,
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
    throwIfDoomed(group);
    const lastSeqs = new Map(
      tenantRows.map((row) => [row.tenant_id, row.last_seq]),
    );

    const keys = new Map<string, { namespace: string; key: string }>();
    for (const request of requests) {
      for (const { namespace, key } of request.operations) {
        keys.set(stateKey(namespace, key), { namespace, key });
      }
    }
    const rows = await selectEntries(tx, [...keys.values()]);
    const stored = new Map<string, KeyState>();
    for (const [id, row] of rows) {
      stored.set(id, { value: row.value, version: row.version });
    }

    const plan = planWrites(requests, stored, lastSeqs, Date.now());
    if (plan.changes.length === 0) return plan;
    throwIfDoomed(group);
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
}

/**
 * Rejects the transaction of a doomed group, so the driver rolls it back
 * without sending the statements that remain.
 */
function throwIfDoomed(group: Group): void {
  if (group.doomed) throw storeUnavailable(doomedReason);
}

const doomedReason =
  "a write of the same group commit timed out, so the transaction was rolled back and this write was not applied";

/**
 * Maps the error of a failed transaction to the error its writes get. Its
 * `data.reason` states whether the writes were applied.
 */
function toWriteFailure(group: Group, error: unknown): unknown {
  if (group.commitSent && !isRolledBack(error)) {
    return storeUnavailable(
      `COMMIT was sent but its outcome did not arrive (${formatDriverError(error)}), so the outcome is unknown: read the key before retrying`,
    );
  }
  if (group.doomed) return storeUnavailable(doomedReason);
  if (error instanceof RpcError || !isUnavailable(error)) return error;
  return storeUnavailable(
    `${formatDriverError(error)}; the transaction was rolled back, so the write was not applied`,
  );
}

/**
 * Returns the time left until the group's deadline, in whole ms and at
 * least 1, because a statement_timeout of 0 turns the limit off.
 */
function remainingMs(group: Group): number {
  return Math.max(1, Math.ceil(group.deadline - performance.now()));
}

/**
 * Tells whether a failed transaction is known to be rolled back. An error
 * that PostgreSQL sent, even in reply to COMMIT, aborts the transaction.
 * A lost connection or a timeout in the driver leaves a sent COMMIT's
 * outcome unknown.
 */
function isRolledBack(error: unknown): boolean {
  if (error instanceof postgres.PostgresError) return true;
  return (error as { code?: unknown })?.code === "TRANSACTION_ROLLED_BACK";
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
