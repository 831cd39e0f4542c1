import { tenantOf } from "../names/namespace.js";
import { ErrorCode, invalidParams, RpcError } from "../protocol/errors.js";
import type { Change, HistoryHold, Store } from "../store/store.js";
import { serializeChange } from "./change-notification.js";
import type { LiveSubscriber, WatchHub } from "./watch-hub.js";

/** The destination of a session's notifications: the connection's outbound queue. */
export interface NotificationSink {
  sendNotification(frame: Buffer): void;
  /** Bytes queued for the client and not yet written to the socket. */
  unsentBytes(): number;
  /** Closes the connection with 4008; called once. */
  closeSlowConsumer(): void;
  /** Closes the connection with 1011 after a store failure mid-replay. */
  closeAfterStoreFailure(): void;
  /** Resolves once unsentBytes() is below `bytes` or the socket closed. */
  waitForDrain(bytes: number): Promise<void>;
}

export interface WatchLimits {
  maxSubscriptions: number;
  maxOutboundBytes: number;
  /**
   * Maximum lag, in changes, of a connection catching up from history
   * before it is closed as a slow consumer.
   */
  maxCatchUpChanges: number;
}

interface PendingNotification {
  seq: number;
  frame: Buffer;
}

interface ReplayJob {
  namespace: string;
  /** The last seq read from history for this job. */
  afterSeq: number;
  uptoSeq: number;
  hold: HistoryHold;
  /** Changes read from history and not sent yet, in seq order. */
  buffer: Change[];
}

/** Changes read from history at a time: at most 4 MiB of 64 KiB values. */
const replayPageSize = 64;
/** A replay lets other work run after this many changes. */
const yieldEverySends = 64;

/**
 * The subscriptions of one connection, with replay from history and the
 * slow-consumer limit. All subscriptions of a connection belong to the
 * key's one tenant, so its notifications share one seq order: a replay is
 * merged with the live changes that wait behind it, so that every
 * subscription sees its changes in increasing seq order.
 */
export class WatchSession implements LiveSubscriber {
  deliveryMark = 0;

  private readonly subscriptions = new Set<string>();
  private readonly replayJobs: ReplayJob[] = [];
  private replaying = false;
  private pending: PendingNotification[] = [];
  private pendingBytes = 0;
  private stopped = false;
  private subscriptionLock: Promise<unknown> = Promise.resolve();
  /**
   * The first live seq dropped from `pending` during a replay because
   * `pending` had reached its limit. From there on, changes are read from
   * history for every subscription. Null when nothing was dropped.
   */
  private catchUpFrom: number | null = null;
  private catchUpHold: HistoryHold | undefined;
  private tenantId: string | undefined;
  /** Holds taken by holdNotifications() and not released yet. */
  private notificationHolds = 0;
  /** Resolves once the last hold is released; undefined while none is. */
  private holdsReleased: Promise<void> | undefined;
  private wakeHeldReplay: (() => void) | undefined;

  constructor(
    private readonly hub: WatchHub,
    private readonly store: Store,
    private readonly sink: NotificationSink,
    private readonly limits: WatchLimits,
  ) {}

  deliverLive(seq: number, frame: Buffer): void {
    if (this.stopped) return;
    if (this.replaying || this.notificationHolds > 0) {
      this.queueBehindReplay(seq, frame);
      return;
    }
    if (this.sink.unsentBytes() > this.limits.maxOutboundBytes) {
      this.stop();
      this.sink.closeSlowConsumer();
      return;
    }
    this.sink.sendNotification(frame);
  }

  /**
   * Keeps a live change until the replay has caught up with it, or until
   * the holds of holdNotifications() end when no replay runs. A replay
   * runs as fast as the client reads, so live changes would pile up in
   * memory during a long one. Past half the outbound limit they are
   * dropped here and read from history after the replays instead. Memory
   * stays bounded, and a client that keeps up is not closed.
   */
  private queueBehindReplay(seq: number, frame: Buffer): void {
    if (this.catchUpFrom !== null) {
      if (seq - this.catchUpFrom + 1 > this.limits.maxCatchUpChanges) {
        this.stop();
        this.sink.closeSlowConsumer();
      }
      return;
    }
    if (this.pendingBytes + frame.length <= this.limits.maxOutboundBytes / 2) {
      this.pending.push({ seq, frame });
      this.pendingBytes += frame.length;
      return;
    }

    const from = this.pending[0]?.seq ?? seq;
    this.catchUpFrom = from;
    this.catchUpHold = this.store.holdHistory(this.tenantId!, from - 1);
    this.pending = [];
    this.pendingBytes = 0;
    // Changes from `from` on come only from the catch-up, in seq order
    // for every subscription, so the replays stop short of it.
    for (const job of this.replayJobs) {
      job.uptoSeq = Math.min(job.uptoSeq, from - 1);
      job.buffer = job.buffer.filter((change) => change.seq < from);
    }
  }

  /**
   * Once the replays are done after live changes were dropped, queues a
   * replay of every subscription from the first dropped change up to the
   * latest. Returns false when the connection fell too far behind.
   */
  private queueCatchUp(tenantId: string): boolean {
    const from = this.catchUpFrom!;
    const latestSeq = this.hub.latestSeq(tenantId);
    if (latestSeq - from + 1 > this.limits.maxCatchUpChanges) return false;

    for (const namespace of this.subscriptions) {
      this.replayJobs.push({
        namespace,
        afterSeq: from - 1,
        uptoSeq: latestSeq,
        hold: this.store.holdHistory(tenantId, from - 1),
        buffer: [],
      });
    }
    this.catchUpHold?.release();
    this.catchUpHold = undefined;
    this.catchUpFrom = null;
    return true;
  }

  /**
   * Runs subscription changes of this connection one at a time, in the
   * order requested. Without it, subscribes sent together would all pass
   * the subscription cap, or the already-subscribed check, before any of
   * them registered.
   */
  private exclusive<T>(run: () => Promise<T> | T): Promise<T> {
    const result = this.subscriptionLock.then(run);
    this.subscriptionLock = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /**
   * Holds back the notifications of this connection until the returned
   * function is called. Live changes wait in `pending`, as during a replay,
   * and a running replay sends nothing. The connection calls this while it
   * executes a frame with a watch/subscribe, because a notification queued
   * after that frame started is sent after its response. If it were sent
   * before the new subscription registered, its seq could be above the
   * first one that the subscription's replay sends, and the client would
   * drop that replay as already delivered.
   */
  holdNotifications(): () => void {
    if (this.notificationHolds++ === 0) {
      this.holdsReleased = new Promise(
        (resolve) => (this.wakeHeldReplay = resolve),
      );
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.notificationHolds > 0) return;

      this.wakeHeldReplay?.();
      this.holdsReleased = undefined;
      this.wakeHeldReplay = undefined;
      const changesWaiting =
        this.pending.length > 0 || this.catchUpFrom !== null;
      if (changesWaiting && !this.replaying && !this.stopped) {
        this.startReplays(this.tenantId!);
      }
    };
  }

  private startReplays(tenantId: string): void {
    this.replaying = true;
    setImmediate(() => void this.runReplays(tenantId));
  }

  /**
   * Starts a subscription after the caller validated the params and the
   * key's access to the namespace. Returns the subscribe result.
   */
  subscribe(
    namespace: string,
    fromSeq: number | undefined,
    storeId: string | undefined,
  ): Promise<{ namespace: string; seq: number; storeId: string }> {
    return this.exclusive(() => this.subscribeNow(namespace, fromSeq, storeId));
  }

  private async subscribeNow(
    namespace: string,
    fromSeq: number | undefined,
    storeId: string | undefined,
  ): Promise<{ namespace: string; seq: number; storeId: string }> {
    const tenantId = tenantOf(namespace);
    this.tenantId = tenantId;
    const alreadySubscribed = this.subscriptions.has(namespace);

    // Held from before the bounds are read until the replay has read past
    // it, so pruning cannot remove history that the replay still needs.
    let hold =
      fromSeq !== undefined && !alreadySubscribed
        ? this.store.holdHistory(tenantId, fromSeq)
        : undefined;
    try {
      const bounds =
        fromSeq !== undefined || storeId !== undefined
          ? await this.store.historyBounds(tenantId)
          : undefined;
      if (storeId !== undefined && storeId !== this.store.storeId) {
        throw this.compacted(
          bounds!.oldestSeq,
          "The storeId differs from this store's: its history was replaced (for example by a restore); read the current state again instead of replaying.",
        );
      }
      if (alreadySubscribed && fromSeq !== undefined) {
        throw invalidParams(
          "This connection already watches that namespace; call watch/unsubscribe first to replay from fromSeq.",
        );
      }

      await this.hub.loadTenant(tenantId);
      const resultNow = this.result(namespace, this.hub.latestSeq(tenantId));
      if (alreadySubscribed || this.stopped) return resultNow;

      // From here to the return nothing awaits, so no change can be
      // published between reading the latest seq and registering.
      const latestSeq = this.hub.latestSeq(tenantId);
      if (fromSeq !== undefined && fromSeq > latestSeq) {
        throw invalidParams(
          `fromSeq ${fromSeq} is above the tenant's latest seq ${latestSeq}; resume from a seq you received.`,
          { latestSeq },
        );
      }
      // Invalid params come before the cap, as in every method.
      if (this.subscriptions.size >= this.limits.maxSubscriptions) {
        throw new RpcError(
          ErrorCode.RateLimited,
          `This connection already has ${this.limits.maxSubscriptions} subscriptions, the maximum; unsubscribe from one or open another connection.`,
          { limit: this.limits.maxSubscriptions },
        );
      }
      if (fromSeq !== undefined) {
        if (fromSeq + 1 < bounds!.oldestSeq) {
          throw this.compacted(
            bounds!.oldestSeq,
            `History before seq ${bounds!.oldestSeq} was discarded; read the current state again, then subscribe without fromSeq.`,
          );
        }
      }

      this.subscriptions.add(namespace);
      this.hub.index.add(namespace, this);
      if (hold && fromSeq! < latestSeq) {
        // During a catch-up, changes from catchUpFrom on come from it.
        const uptoSeq =
          this.catchUpFrom === null
            ? latestSeq
            : Math.min(latestSeq, this.catchUpFrom - 1);
        this.replayJobs.push({
          namespace,
          afterSeq: fromSeq!,
          uptoSeq,
          hold,
          buffer: [],
        });
        hold = undefined;
        if (!this.replaying) this.startReplays(tenantId);
      }
      return this.result(namespace, latestSeq);
    } finally {
      hold?.release();
    }
  }

  unsubscribe(namespace: string): Promise<boolean> {
    return this.exclusive(() => {
      if (!this.subscriptions.delete(namespace)) return false;
      this.hub.index.remove(namespace, this);
      for (const job of this.replayJobs) {
        if (job.namespace !== namespace) continue;
        job.uptoSeq = job.afterSeq;
        job.buffer = [];
      }
      return true;
    });
  }

  /** Stops every subscription; no notification is sent after this. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const namespace of this.subscriptions) {
      this.hub.index.remove(namespace, this);
    }
    this.subscriptions.clear();
    for (const job of this.replayJobs) job.hold.release();
    this.replayJobs.length = 0;
    this.catchUpHold?.release();
    this.catchUpHold = undefined;
    this.pending = [];
    this.pendingBytes = 0;
    // A replay waiting for the holds to end can now return.
    this.wakeHeldReplay?.();
  }

  private result(namespace: string, seq: number) {
    return { namespace, seq, storeId: this.store.storeId };
  }

  private compacted(oldestSeq: number, message: string): RpcError {
    return new RpcError(ErrorCode.HistoryCompacted, message, {
      oldestSeq,
      storeId: this.store.storeId,
    });
  }

  /**
   * Sends the queued replays as one stream in seq order: the replays of
   * all subscriptions that requested one, and the live changes that
   * arrived meanwhile, merged, each change once. A client hands a
   * notification to every subscription that matches it. Two replays sent
   * one after the other would show a broad subscription a late change
   * before an early one, and the client would then drop the early one as
   * already delivered.
   *
   * History is read in short pages per replay, and a change is sent only
   * while the socket's unsent data is below a quarter of the limit, so a
   * replay goes no faster than the client reads.
   */
  private async runReplays(tenantId: string): Promise<void> {
    const drainBelow = Math.max(
      1024,
      Math.floor(this.limits.maxOutboundBytes / 4),
    );
    let sent = 0;
    try {
      while (!this.stopped) {
        // SQLite reads resolve at once and a fast client drains at once,
        // so without this a long replay would hold the event loop and
        // stall every other connection, commits and pings included.
        if (++sent % yieldEverySends === 0) {
          await new Promise((resolve) => setImmediate(resolve));
          if (this.stopped) break;
        }
        if (this.sink.unsentBytes() >= drainBelow) {
          await this.sink.waitForDrain(drainBelow);
          if (this.stopped) break;
        }
        await this.refillReplayBuffers(tenantId);
        if (this.stopped) break;
        // Checked after the last await, so nothing is sent while held.
        if (this.holdsReleased !== undefined) {
          await this.holdsReleased;
          continue;
        }
        if (this.replayJobs.length === 0) {
          if (this.catchUpFrom === null) break;
          if (!this.queueCatchUp(tenantId)) {
            this.stop();
            this.sink.closeSlowConsumer();
            return;
          }
          continue;
        }
        // A replay queued during the reads has no page yet; read it first,
        // since its changes may come before every buffered one.
        if (this.replayJobs.some((job) => job.buffer.length === 0)) continue;

        // Nothing below awaits, so the set of replays cannot change.
        const next = Math.min(
          ...this.replayJobs.map((job) => job.buffer[0].seq),
        );
        this.sendPendingBefore(next);
        let change: Change | undefined;
        for (const job of this.replayJobs) {
          if (job.buffer[0]?.seq === next) change = job.buffer.shift();
        }
        if (this.pending[0]?.seq === next) {
          this.sendPendingBefore(next + 1);
        } else if (change) {
          this.sink.sendNotification(serializeChange(change));
        }
      }
    } catch {
      // The store failed mid-replay. No error can reach the client on this
      // subscription, so the connection is closed and the client resumes
      // with fromSeq, losing nothing.
      this.stop();
      this.sink.closeAfterStoreFailure();
      return;
    }
    if (this.stopped) return;
    this.sendPendingBefore(Number.POSITIVE_INFINITY);
    this.replaying = false;
  }

  /**
   * Reads the next page of history for every replay whose buffer is
   * empty, and drops the replays that have sent everything.
   */
  private async refillReplayBuffers(tenantId: string): Promise<void> {
    // The pages of all replays together stay within replayPageSize
    // changes, so 64 replays buffer no more than one replay would.
    const limit = Math.max(
      1,
      Math.floor(replayPageSize / Math.max(1, this.replayJobs.length)),
    );
    for (const job of [...this.replayJobs]) {
      if (job.buffer.length > 0 || job.afterSeq >= job.uptoSeq) continue;
      const page = await this.store.readChanges({
        tenantId,
        namespace: job.namespace,
        afterSeq: job.afterSeq,
        uptoSeq: job.uptoSeq,
        limit,
      });
      if (this.stopped) return;

      // An unsubscribe or the start of a catch-up may have cut the job
      // short while the page was read; nothing past its end is sent.
      const readUpTo =
        page.length > 0 ? page[page.length - 1].seq : job.uptoSeq;
      job.buffer = page.filter((change) => change.seq <= job.uptoSeq);
      job.afterSeq = Math.max(job.afterSeq, Math.min(readUpTo, job.uptoSeq));
      job.hold.moveTo(job.afterSeq);
    }

    for (let index = this.replayJobs.length - 1; index >= 0; index--) {
      const job = this.replayJobs[index];
      if (job.buffer.length > 0 || job.afterSeq < job.uptoSeq) continue;
      job.hold.release();
      this.replayJobs.splice(index, 1);
    }
  }

  private sendPendingBefore(seq: number): void {
    let count = 0;
    while (count < this.pending.length && this.pending[count].seq < seq) {
      const item = this.pending[count];
      this.sink.sendNotification(item.frame);
      this.pendingBytes -= item.frame.length;
      count++;
    }
    if (count > 0) this.pending.splice(0, count);
  }
}
