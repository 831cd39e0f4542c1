import type { Duplex } from "node:stream";

import type { Logger } from "pino";
import WebSocket from "ws";

import type { ApiKeyRecord } from "../auth/api-key.js";
import { dispatch, type DispatchContext } from "../methods/dispatch.js";
import { parseFrame, type Entry, type Frame } from "../protocol/envelope.js";
import { ErrorCode, RpcError, unauthenticated } from "../protocol/errors.js";
import type { NotificationSink } from "../watch/watch-session.js";
import { WatchSession } from "../watch/watch-session.js";
import { answerFrame } from "./frame-answer.js";
import type { ServerContext } from "./server-context.js";
import { RequestScheduler } from "./request-scheduler.js";
import { WriteCoalescer } from "./write-coalescing.js";

/** An unauthenticated connection is closed after this many frames... */
const unauthenticatedFrameLimit = 16;
/** ...or after this long, whichever comes first. */
const unauthenticatedTimeoutMs = 10_000;
/** Frames waiting to start before the socket stops being read. */
const maxInboxFrames = 256;
/** A close handshake that has not finished by then drops the socket. */
const closeHandshakeTimeoutMs = 5_000;

export const CloseCode = {
  GoingAway: 1001,
  InternalError: 1011,
  SlowConsumer: 4008,
  Unauthorized: 4401,
} as const;

interface OutboundSlot {
  /**
   * The frame to send: undefined while the request is running, null when
   * nothing is sent. A notification is a Buffer shared with the other
   * subscribers of its change.
   */
  frame: string | Buffer | null | undefined;
  bytes: number;
  kind: "answer" | "notification";
  /**
   * Set once a write or a watch/subscribe of the frame starts: a
   * notification queued later never overtakes this answer, so a client
   * sees the answer to its write, and to its subscribe, before the
   * notifications that follow from them.
   */
  barrier: boolean;
}

let nextConnectionId = 1;

/**
 * One WebSocket client: reads frames, answers them in the order received,
 * and carries the watch notifications of its subscriptions. Responses and
 * notifications share one ordered outbound queue, so the answer to a write
 * always precedes the notification of the change it made.
 */
export class Connection implements NotificationSink {
  readonly id = nextConnectionId++;
  readonly watch: WatchSession | undefined;

  private readonly logger: Logger;
  private readonly scheduler: RequestScheduler;
  private readonly writes: WriteCoalescer;
  private readonly dispatchContext: DispatchContext | undefined;
  private readonly outbound: OutboundSlot[] = [];
  private outboundBytes = 0;
  /** Frames with reads that started and have no response yet. */
  private readonly readsInFlight = new Set<Promise<void>>();
  private frameCount = 0;
  private readingPaused = false;
  /** Frames received and not started yet. */
  private readonly inbox: Array<{
    frame: Frame;
    slot: OutboundSlot;
    closeAfter: boolean;
  }> = [];
  private processing = false;
  private closing = false;
  private authTimer: NodeJS.Timeout | undefined;
  lastPongAt = Date.now();

  /**
   * `transport` is the upgraded TCP socket under `socket`, whose writes
   * are coalesced per event loop turn.
   */
  constructor(
    private readonly socket: WebSocket,
    transport: Duplex,
    readonly key: ApiKeyRecord | null,
    private readonly server: ServerContext,
  ) {
    this.logger = server.logger.child({
      connectionId: this.id,
      keyId: key?.id,
    });
    this.writes = new WriteCoalescer(transport);
    this.scheduler = new RequestScheduler((method) =>
      server.isWriteMethod(method),
    );

    if (key) {
      this.watch = new WatchSession(server.hub, server.store, this, {
        maxSubscriptions: server.config.maxSubscriptions,
        maxOutboundBytes: server.config.maxOutboundBytes,
        maxCatchUpChanges: server.config.historyChanges,
      });
      this.dispatchContext = {
        key,
        store: server.store,
        limits: { maxValueBytes: server.config.maxValueBytes },
        watch: this.watch,
        takeRateToken: () => server.rateLimiter.take(key.id),
        isKeyActive: () => !this.closing && server.keys.isActive(key.id),
        openRpcDocument: server.openRpcDocument,
      };
    } else {
      this.authTimer = setTimeout(
        () => this.close(CloseCode.Unauthorized, "no valid API key"),
        unauthenticatedTimeoutMs,
      );
    }

    socket.on("message", (data, isBinary) => this.onMessage(data, isBinary));
    socket.on("pong", () => (this.lastPongAt = Date.now()));
    socket.on("close", () => this.onClose());
    socket.on("error", (error) => {
      this.logger.debug({ err: error }, "websocket error");
    });
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.closing) return;
    this.frameCount++;

    let frame: Frame;
    if (isBinary) {
      frame = {
        kind: "error",
        error: new RpcError(
          ErrorCode.InvalidRequest,
          "Binary frames are not accepted; send JSON-RPC as a text frame.",
        ),
      };
    } else {
      frame = parseFrame(rawDataToString(data));
    }

    // The slot is taken on arrival, so answers keep the order of frames.
    const slot: OutboundSlot = {
      frame: undefined,
      bytes: 0,
      kind: "answer",
      barrier: false,
    };
    this.outbound.push(slot);
    const closeAfter =
      !this.key && this.frameCount >= unauthenticatedFrameLimit;
    this.inbox.push({ frame, slot, closeAfter });
    this.applyBackpressure();
    void this.processInbox();
  }

  /**
   * Runs the frames that arrived, in order. Writes start at once, so the
   * writes of consecutive frames share a commit. At most the store's
   * maxReadsInFlight frames with reads run at once, and no frame starts
   * while the client leaves more than the outbound limit unread. Without
   * the bound, a burst of pipelined reads of large pages would all be in
   * memory before the first response was counted. The request scheduler
   * keeps reads behind the writes sent before them.
   */
  private async processInbox(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      const limit = this.server.config.maxOutboundBytes;
      const maxReads = this.server.store.maxReadsInFlight;
      while (this.inbox.length > 0 && !this.closing) {
        if (this.unsentBytes() > limit) await this.waitForDrain(limit / 2);
        const item = this.inbox.shift()!;
        const answered = this.answer(item.frame, item.slot);
        if (item.closeAfter) {
          const closeUnauthenticated = () =>
            this.close(CloseCode.Unauthorized, "no valid API key");
          answered.then(closeUnauthenticated, closeUnauthenticated);
        }
        if (!this.hasRead(item.frame)) continue;
        // A batch hands its requests to the scheduler one at a time, each
        // after the read before it, so a frame started now could run ahead
        // of the batch's later requests.
        if (item.frame.kind === "batch") {
          await answered;
          continue;
        }
        const reads = this.readsInFlight;
        reads.add(answered);
        void answered.then(() => reads.delete(answered));
        while (reads.size >= maxReads) await Promise.race(reads);
      }
    } finally {
      this.processing = false;
    }
  }

  private hasRead(frame: Frame): boolean {
    return entriesOf(frame).some(
      (entry) => entry.valid && !this.server.isWriteMethod(entry.method),
    );
  }

  /** Executes a frame and fills its slot; resolves once it is filled. */
  private answer(frame: Frame, slot: OutboundSlot): Promise<void> {
    // The hold spans the whole frame because a batch has one response
    // slot: once one of its writes or subscribes has started, every
    // notification comes after all of its responses, even one sent before
    // a later subscribe of the batch registers.
    const subscribes = entriesOf(frame).some(
      (entry) => entry.valid && entry.method === "watch/subscribe",
    );
    const release = subscribes ? this.watch?.holdNotifications() : undefined;
    const answered = answerFrame(
      frame,
      (request) =>
        this.scheduler.run(request, () => this.execute(request, slot)),
      {
        logger: this.logger,
        observe: this.server.observeRequest,
        isWrite: this.server.isWriteMethod,
        maxBatchResponseBytes: this.server.config.maxOutboundBytes,
      },
    ).then(
      (text) => this.fill(slot, text),
      (error) => {
        this.logger.error(
          { err: error },
          "building the response to a frame failed",
        );
        this.fill(slot, null);
      },
    );
    return release ? answered.finally(release) : answered;
  }

  private execute(
    request: Parameters<typeof dispatch>[0],
    slot: OutboundSlot,
  ): Promise<unknown> {
    if (!this.dispatchContext) return Promise.reject(unauthenticated());
    if (
      request.method === "watch/subscribe" ||
      this.server.isWriteMethod(request.method)
    ) {
      slot.barrier = true;
    }
    return dispatch(request, this.dispatchContext);
  }

  private fill(slot: OutboundSlot, text: string | null): void {
    slot.frame = text;
    if (text !== null) {
      slot.bytes = Buffer.byteLength(text);
      this.outboundBytes += slot.bytes;
    }
    this.flush();
  }

  /** Sends every ready item at the head of the queue, in order. */
  private flush(): void {
    while (this.outbound.length > 0) {
      const head = this.outbound[0];
      if (head.frame === undefined) break;
      this.outbound.shift();
      this.outboundBytes -= head.bytes;
      if (head.frame !== null) this.sendFrame(head.frame, head.bytes);
    }
    this.applyBackpressure();
  }

  /**
   * Stops reading requests while the client leaves more than the outbound
   * limit unread or too many frames wait to start, and resumes once both
   * have drained by half. Responses are always queued, so without this a
   * client that pipelines requests and never reads the answers could grow
   * the server's memory without bound.
   */
  // NOTE: the bound is per connection. Many connections each holding one
  // large response at once (kv/mget of 1,000 values of 64 KiB is 64 MiB)
  // have no process-wide cap yet.
  private applyBackpressure(): void {
    const limit = this.server.config.maxOutboundBytes;
    if (this.readingPaused || this.closing) return;
    if (this.unsentBytes() <= limit && this.inbox.length <= maxInboxFrames) {
      return;
    }
    this.readingPaused = true;
    this.socket.pause();
    const resumeWhenDrained = () => {
      if (this.closing) return;
      if (this.inbox.length > maxInboxFrames / 2) {
        setTimeout(resumeWhenDrained, 5);
        return;
      }
      void this.waitForDrain(limit / 2).then(() => {
        this.readingPaused = false;
        if (!this.closing) this.socket.resume();
      });
    };
    resumeWhenDrained();
  }

  /**
   * Queues a notification as early as the ordering rules allow: after
   * every earlier notification and every answer that is a barrier, but
   * ahead of plain reads still running, so that a slow read does not delay
   * live changes.
   */
  sendNotification(frame: Buffer): void {
    if (this.closing) return;
    const bytes = frame.length;
    if (this.outbound.length === 0) {
      this.sendFrame(frame, bytes);
      return;
    }
    let position = this.outbound.length;
    while (position > 0) {
      const before = this.outbound[position - 1];
      if (before.kind === "notification" || before.barrier) break;
      position--;
    }
    this.outbound.splice(position, 0, {
      frame,
      bytes,
      kind: "notification",
      barrier: false,
    });
    this.outboundBytes += bytes;
    if (position === 0) this.flush();
  }

  private sendFrame(frame: string | Buffer, bytes: number): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.writes.beforeWrite(bytes);
    // A Buffer is sent as a text frame too. ws writes it without copying
    // or re-encoding, since a server does not mask its frames.
    this.socket.send(frame, { binary: false });
  }

  /** Bytes queued for the client, leaving out those held until the turn ends. */
  unsentBytes(): number {
    return (
      this.socket.bufferedAmount + this.outboundBytes - this.writes.heldBytes
    );
  }

  waitForDrain(bytes: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.closing || this.unsentBytes() < bytes) resolve();
        else setTimeout(check, 5);
      };
      check();
    });
  }

  closeSlowConsumer(): void {
    this.server.metrics.slowConsumerCloses.inc();
    this.logger.info(
      { unsentBytes: this.unsentBytes() },
      "closing a slow consumer",
    );
    this.close(
      CloseCode.SlowConsumer,
      "slow consumer: resubscribe with fromSeq",
    );
  }

  closeAfterStoreFailure(): void {
    this.close(CloseCode.InternalError, "store failed during replay");
  }

  /** Stops the watches and closes with `code`; drops it after 5 s. */
  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.authTimer);
    this.watch?.stop();
    if (this.socket.readyState === WebSocket.OPEN) {
      this.socket.close(code, reason);
    }
    setTimeout(() => this.socket.terminate(), closeHandshakeTimeoutMs).unref();
  }

  /** Closes without a handshake, for a peer that stopped answering pings. */
  terminate(): void {
    this.closing = true;
    this.watch?.stop();
    this.socket.terminate();
  }

  ping(): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.ping();
  }

  private onClose(): void {
    this.closing = true;
    clearTimeout(this.authTimer);
    this.watch?.stop();
    this.server.forgetConnection(this);
  }
}

function entriesOf(frame: Frame): Entry[] {
  if (frame.kind === "single") return [frame.entry];
  if (frame.kind === "batch") return frame.entries;
  return [];
}

function rawDataToString(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}
