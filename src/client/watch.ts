import type { Connection } from "./connection.js";
import { ClientErrorCode } from "./error-codes.js";
import type { KvError } from "./kv-error.js";
import { callListener } from "./listener.js";
import type { Change, SubscribeParams, SubscribeResult } from "./types.js";

export interface WatchOptions {
  /** Deliver the retained changes after this seq first, then live ones. */
  fromSeq?: number;
  /** The storeId that came with fromSeq; a different store is -32006. */
  storeId?: string;
  /**
   * Called each time the watch subscribes again after a dropped
   * connection or a pause of a full buffer, with the seq it resumes after.
   */
  onResume?: (info: { namespace: string; fromSeq: number }) => void;
}

/**
 * - pending: needs a subscribe once the connection is open;
 * - subscribing: the subscribe was sent, changes are not taken yet;
 * - active: changes are taken;
 * - paused: the buffer was full, so the watch unsubscribed and waits for
 *   the reader;
 * - ended: closed or failed.
 */
type Phase = "pending" | "subscribing" | "active" | "paused" | "ended";

/**
 * One watched namespace: an async iterable of its changes, each exactly
 * once and in seq order, across reconnects. At most maxBufferedChanges
 * wait for the reader. When a change would exceed that, the watch drops it,
 * unsubscribes, and once the reader has taken half of the buffer it
 * subscribes again with fromSeq set to the last change it buffered, so the
 * server replays what was dropped.
 */
export class Watch implements AsyncIterable<Change>, AsyncIterator<Change> {
  readonly namespace: string;
  /** Seq of the last change taken into the buffer; undefined before the first subscribe. */
  lastSeq: number | undefined;
  /** The store's history id, from the first subscribe or from the options. */
  storeId: string | undefined;

  private phase: Phase = "pending";
  private subscribedBefore = false;
  private readonly buffer: Change[] = [];
  /** Pending next() calls, oldest first; non-empty only while the buffer is empty. */
  private readonly waiters: Array<{
    resolve(result: IteratorResult<Change>): void;
    reject(error: unknown): void;
  }> = [];
  private failure: KvError | undefined;

  constructor(
    namespace: string,
    private readonly connection: Connection,
    private readonly maxBuffered: number,
    private readonly options: WatchOptions,
    private readonly onEnded: (watch: Watch) => void,
  ) {
    this.namespace = namespace;
    this.lastSeq = options.fromSeq;
    this.storeId = options.storeId;
  }

  [Symbol.asyncIterator](): AsyncIterator<Change> {
    return this;
  }

  next(): Promise<IteratorResult<Change>> {
    const change = this.buffer.shift();
    if (change !== undefined) {
      if (
        this.phase === "paused" &&
        this.buffer.length <= this.maxBuffered / 2
      ) {
        this.phase = "pending";
        this.subscribeIfPending();
      }
      return Promise.resolve({ value: change, done: false });
    }
    if (this.failure !== undefined) {
      const failure = this.failure;
      this.failure = undefined;
      return Promise.reject(failure);
    }
    if (this.phase === "ended") {
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
    });
  }

  /** Runs when a for-await loop breaks; unsubscribes. */
  async return(): Promise<IteratorResult<Change>> {
    await this.close();
    return { value: undefined, done: true };
  }

  /** Ends the watch and unsubscribes; buffered changes are discarded. */
  async close(): Promise<void> {
    if (this.phase === "ended") return;

    const wasSubscribed =
      this.phase === "active" || this.phase === "subscribing";
    this.buffer.length = 0;
    this.end(undefined);
    if (wasSubscribed && this.connection.isOpen) {
      // The watch has ended whatever the outcome, so every outcome,
      // a drop included, just resolves.
      await new Promise<void>((resolve) =>
        this.connection.send({
          method: "watch/unsubscribe",
          params: { namespace: this.namespace },
          kind: "control",
          onResult: () => resolve(),
          onError: () => resolve(),
          onDropped: () => resolve(),
        }),
      );
    }
  }

  /** Sends watch/subscribe if the watch needs one and the connection is open. */
  subscribeIfPending(): void {
    if (this.phase !== "pending" || !this.connection.isOpen) return;

    this.phase = "subscribing";
    const params: SubscribeParams = { namespace: this.namespace };
    if (this.lastSeq !== undefined) params.fromSeq = this.lastSeq;
    if (this.storeId !== undefined) params.storeId = this.storeId;
    this.connection.send({
      method: "watch/subscribe",
      params,
      kind: "control",
      // Runs in the message callback that received the response, before
      // any notification of the same socket read is routed: ws emits the
      // messages of one read synchronously, and a replayed change may sit
      // right behind this response.
      onResult: (result) => this.onSubscribed(result as SubscribeResult),
      onError: (error) => this.onSubscribeFailed(error),
    });
  }

  /** Takes a change that matches the namespace, unless already taken. */
  offer(change: Change): void {
    if (this.phase !== "active") return;
    if (this.lastSeq !== undefined && change.seq <= this.lastSeq) return;

    if (this.buffer.length >= this.maxBuffered) {
      this.pause();
      return;
    }
    this.lastSeq = change.seq;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve({ value: change, done: false });
    } else {
      this.buffer.push(change);
    }
  }

  connectionLost(): void {
    if (this.phase === "active" || this.phase === "subscribing") {
      this.phase = "pending";
    }
  }

  /**
   * Ends the watch. With an error, the reader gets the buffered changes
   * first and then the error; without one, the iteration ends.
   */
  end(error: KvError | undefined): void {
    if (this.phase === "ended") return;

    this.phase = "ended";
    this.onEnded(this);
    const waiters = this.waiters.splice(0);
    if (error === undefined) {
      for (const waiter of waiters) {
        waiter.resolve({ value: undefined, done: true });
      }
      return;
    }
    // The first waiting reader gets the error, later ones the end, as a
    // reader that calls next() after the error would.
    const [first, ...rest] = waiters;
    if (first === undefined) this.failure = error;
    else first.reject(error);
    for (const waiter of rest) waiter.resolve({ value: undefined, done: true });
  }

  private onSubscribed(result: SubscribeResult): void {
    if (this.phase !== "subscribing") return;

    this.phase = "active";
    this.storeId ??= result.storeId;
    const resumed = this.subscribedBefore;
    this.subscribedBefore = true;
    if (this.lastSeq === undefined) {
      this.lastSeq = result.seq;
    } else if (resumed) {
      const onResume = this.options.onResume;
      const info = { namespace: this.namespace, fromSeq: this.lastSeq };
      if (onResume !== undefined) callListener(onResume, info);
    }
  }

  /**
   * Ends the watch with the error, except when a resubscribe timed out:
   * the server may still run that subscribe later, so the connection is
   * dropped and the watch resubscribes on the next one.
   */
  private onSubscribeFailed(error: KvError): void {
    const resumeTimedOut =
      error.code === ClientErrorCode.Timeout && this.subscribedBefore;
    if (resumeTimedOut && this.connection.abandonSocket(error.message)) {
      return;
    }
    this.end(error);
  }

  private pause(): void {
    this.phase = "paused";
    if (!this.connection.isOpen) return;
    this.connection.send({
      method: "watch/unsubscribe",
      params: { namespace: this.namespace },
      kind: "control",
      onResult: () => {},
      onError: () => {},
    });
  }
}
