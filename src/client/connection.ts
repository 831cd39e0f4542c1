import { reconnectDelayMs } from "./backoff.js";
import {
  clientClosed,
  connectFailed,
  keyRejected,
  messageTooLarge,
  outcomeUnknown,
  queueFull,
  reconnectFailed,
  timedOut,
} from "./client-errors.js";
import { KvError, kvErrorFromResponse } from "./kv-error.js";
import { callListener } from "./listener.js";
import type { ResolvedOptions } from "./options.js";
import { encodeRequest } from "./request-frame.js";
import { openSocket, socketOpen, type WebSocketLike } from "./socket.js";
import type { ConnectionState, StatusEvent, StatusListener } from "./status.js";

/**
 * The kind of a call, which decides what happens when the connection drops
 * before its response. A read is sent again after reconnecting. A write
 * may already have been applied, so it fails with OutcomeUnknown. A
 * control call (a watch's own subscribe or unsubscribe) is discarded,
 * because the watch subscribes again on the next connection.
 */
export type CallKind = "read" | "write" | "control";

export interface Call {
  method: string;
  params: object;
  kind: CallKind;
  /** Runs inside the message callback that received the response. */
  onResult(result: unknown): void;
  onError(error: KvError): void;
  /** Runs when a control call is discarded because the connection dropped. */
  onDropped?(): void;
}

interface PendingCall extends Call {
  id: number;
  /** The request as JSON text, encoded once when the call was made. */
  frame: string;
  sent: boolean;
  timer: ReturnType<typeof setTimeout>;
}

/** Callbacks through which the connection drives the watches. */
export interface ConnectionHooks {
  /** Runs on every open, before queued calls are sent. */
  onOpen(): void;
  onDisconnect(): void;
  onNotification(method: string, params: unknown): void;
  /** Runs once when the client stops; error is absent after close(). */
  onStop(error: KvError | undefined): void;
}

const closeCodeUnauthorized = 4401;
const closeCodeMessageTooBig = 1009;
const closeCodeAbnormal = 1006;
const closeCodeNormal = 1000;

/** Time in ms close() waits for the server's close frame. */
const closeWaitMs = 1_000;

// NOTE: browsers hide pings. There, a connection that dies without a TCP
// close (a server that vanished from the network) is noticed only when a
// call times out, and until then an idle watch waits.

/**
 * One logical connection to a kvstream server over successive WebSockets:
 * sends calls, matches responses by id, times calls out, queues them while
 * disconnected and reconnects with backoff.
 */
export class Connection {
  private state: ConnectionState = "connecting";
  private socket: WebSocketLike | undefined;
  /** Counts socket attempts; events of an older socket are ignored. */
  private generation = 0;
  /**
   * Reconnect attempts since the backoff last started over. It starts over
   * once an open socket has proved to work (resetBackoffWhenStable), not
   * on open, so that a server that fails every connection right after
   * accepting it is not retried at the initial delay forever.
   */
  private reconnectAttempt = 0;
  private stableTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether the open socket reports pings, so that silence means a loss. */
  private watchesPings = false;
  /** Ends a socket from which nothing arrived for serverSilenceTimeoutMs. */
  private silenceTimer: ReturnType<typeof setTimeout> | undefined;
  private everOpened = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** The attempt in progress, so that stop() can abandon it. */
  private connecting:
    | { timer: ReturnType<typeof setTimeout>; socket?: WebSocketLike }
    | undefined;
  private stopError: KvError | undefined;
  private nextId = 1;
  /** Calls without a response, in id order (Map keeps insertion order). */
  private readonly calls = new Map<number, PendingCall>();
  private readonly listeners = new Set<StatusListener>();
  private resolveFirstOpen!: () => void;
  private rejectFirstOpen!: (error: KvError) => void;
  private notifySocketClosed: (() => void) | undefined;

  /**
   * Settles when the first socket opens, or rejects when the first attempt
   * fails or the client stops before it.
   */
  readonly firstOpen: Promise<void>;

  constructor(
    private readonly url: string,
    private readonly options: ResolvedOptions,
    private readonly hooks: ConnectionHooks,
  ) {
    this.firstOpen = new Promise((resolve, reject) => {
      this.resolveFirstOpen = resolve;
      this.rejectFirstOpen = reject;
    });
    // A KvClient made with `new` need not await `opened`, and a failed
    // first attempt must not then crash the process as an unhandled
    // rejection. A caller that awaits it still gets the error.
    this.firstOpen.catch(() => {});
    this.openNextSocket();
  }

  get currentState(): ConnectionState {
    return this.state;
  }

  get isOpen(): boolean {
    return this.state === "open";
  }

  onStatus(listener: StatusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Sends a call now, or queues it while the connection is down. */
  send(call: Call): void {
    if (this.stopError !== undefined) {
      call.onError(this.stopError);
      return;
    }
    if (!this.isOpen && this.queuedCount() >= this.options.maxQueuedRequests) {
      call.onError(queueFull(call.method, this.options.maxQueuedRequests));
      return;
    }

    const id = this.nextId++;
    // Encoding before queueing means a call that cannot be sent fails
    // here, alone, instead of throwing later while the queue is flushed.
    const frame = encodeRequest(id, call.method, call.params);
    if (frame instanceof KvError) {
      call.onError(frame);
      return;
    }
    const timeoutMs = this.options.requestTimeoutMs;
    const pending: PendingCall = {
      ...call,
      id,
      frame,
      sent: false,
      timer: setTimeout(() => this.timeOut(id), timeoutMs),
    };
    this.calls.set(id, pending);
    if (this.isOpen) this.transmit(pending);
  }

  /** Sends a call and resolves with its result. */
  request<T>(method: string, params: object, kind: CallKind): Promise<T> {
    return new Promise((resolve, reject) => {
      this.send({
        method,
        params,
        kind,
        onResult: (result) => resolve(result as T),
        onError: reject,
      });
    });
  }

  /**
   * Stops the client: fails every pending call with Closed, ends the
   * watches and closes the socket. Resolves once the socket has closed,
   * or after one second without the server's close frame.
   */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    const socket = this.socket;
    const closed = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, closeWaitMs);
      this.notifySocketClosed = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.stop(clientClosed(), false);
    if (socket !== undefined) await closed;
    else this.notifySocketClosed?.();
  }

  /**
   * Gives up on the open socket as if it had dropped, without waiting for
   * a close handshake that a stalled server would not complete: sent
   * calls are handled as after any drop, and the client reconnects.
   * Returns false when no socket is open.
   */
  abandonSocket(reason: string): boolean {
    const socket = this.socket;
    if (socket === undefined || this.state !== "open") return false;

    // Events of the old socket no longer reach this connection.
    this.generation++;
    if (socket.terminate !== undefined) {
      socket.terminate();
    } else {
      // No reason text: WebSocket close() throws on one over 123 bytes.
      socket.close(closeCodeNormal);
    }
    this.onDrop(closeCodeAbnormal, reason);
    return true;
  }

  private queuedCount(): number {
    let count = 0;
    for (const call of this.calls.values()) if (!call.sent) count++;
    return count;
  }

  private transmit(call: PendingCall): void {
    const socket = this.socket;
    if (socket === undefined || socket.readyState !== socketOpen) return;
    socket.send(call.frame);
    call.sent = true;
  }

  private timeOut(id: number): void {
    const call = this.calls.get(id);
    if (call === undefined) return;

    this.calls.delete(id);
    call.onError(
      timedOut(
        call.method,
        this.options.requestTimeoutMs,
        call.sent,
        call.kind === "write",
      ),
    );
  }

  private openNextSocket(): void {
    const generation = ++this.generation;
    const attempt = this.reconnectAttempt;
    let opened = false;
    let settled = false;
    let socket: WebSocketLike | undefined;
    let reportsPings = false;
    this.setState({ state: "connecting", attempt });

    const failAttempt = (code: number, reason: string, cause?: unknown) => {
      if (settled || generation !== this.generation) return;
      settled = true;
      clearTimeout(connectTimer);
      this.connecting = undefined;
      this.onAttemptFailed(code, reason, cause);
    };
    const connectTimer = setTimeout(() => {
      socket?.close();
      failAttempt(
        closeCodeAbnormal,
        `no connection within ${this.options.connectTimeoutMs} ms (connectTimeoutMs)`,
      );
    }, this.options.connectTimeoutMs);
    const attemptState: NonNullable<typeof this.connecting> = {
      timer: connectTimer,
    };
    this.connecting = attemptState;

    const events = {
      onOpen: () => {
        if (settled || generation !== this.generation) {
          socket?.close();
          return;
        }
        settled = true;
        opened = true;
        clearTimeout(connectTimer);
        this.connecting = undefined;
        this.watchesPings = reportsPings;
        this.onSocketOpen(socket!);
      },
      onMessage: (text: string) => {
        if (generation !== this.generation || !opened) return;
        this.heardFromServer();
        this.onMessage(text);
      },
      onPing: () => {
        if (generation === this.generation && opened) this.heardFromServer();
      },
      onClose: (code: number, reason: string) => {
        this.notifySocketClosed?.();
        if (opened) {
          if (generation === this.generation) this.onDrop(code, reason);
          return;
        }
        failAttempt(code, reason || "the connection closed before it opened");
      },
    };
    openSocket(this.url, this.options.apiKey, events, this.options.WebSocket)
      .then((created) => {
        socket = created.socket;
        reportsPings = created.reportsPings;
        attemptState.socket = created.socket;
        if (settled || generation !== this.generation) created.socket.close();
      })
      .catch((error: unknown) =>
        failAttempt(closeCodeAbnormal, String(error), error),
      );
  }

  private onSocketOpen(socket: WebSocketLike): void {
    this.socket = socket;
    this.everOpened = true;
    this.heardFromServer();
    this.resetBackoffWhenStable();
    this.setState({ state: "open" });
    this.resolveFirstOpen();

    // Watches resubscribe before queued calls go out, so that a write
    // queued during the outage is seen by its watch.
    this.hooks.onOpen();
    for (const call of this.calls.values()) {
      if (!call.sent) this.transmit(call);
    }
  }

  /**
   * Restarts the silence timer. The server pings every connection (every
   * 30 s by default), so on a socket that reports pings, silence past
   * serverSilenceTimeoutMs means the server or the network path is gone.
   */
  private heardFromServer(): void {
    if (!this.watchesPings) return;
    clearTimeout(this.silenceTimer);
    const timeoutMs = this.options.serverSilenceTimeoutMs;
    if (timeoutMs === Infinity) return;
    this.silenceTimer = setTimeout(
      () =>
        this.abandonSocket(
          `no ping or message from the server within ${timeoutMs} ms (serverSilenceTimeoutMs)`,
        ),
      timeoutMs,
    );
  }

  /**
   * Starts the backoff over once the server has sent a message on the
   * socket, or the socket has stayed open for maxReconnectDelayMs.
   */
  private resetBackoffWhenStable(): void {
    clearTimeout(this.stableTimer);
    this.stableTimer = setTimeout(
      () => (this.reconnectAttempt = 0),
      this.options.maxReconnectDelayMs,
    );
  }

  private onMessage(text: string): void {
    this.reconnectAttempt = 0;
    let message: {
      id?: unknown;
      method?: unknown;
      params?: unknown;
      result?: unknown;
      error?: unknown;
    };
    try {
      message = JSON.parse(text);
    } catch {
      // NOTE: the server sends only valid JSON; a frame that is not is
      // ignored rather than failing unrelated calls.
      return;
    }
    if (typeof message !== "object" || message === null) return;

    if (typeof message.method === "string" && message.id === undefined) {
      this.hooks.onNotification(message.method, message.params);
      return;
    }
    if (typeof message.id !== "number") return;
    const call = this.calls.get(message.id);
    if (call === undefined) return;

    this.calls.delete(message.id);
    clearTimeout(call.timer);
    if (message.error !== undefined) {
      call.onError(kvErrorFromResponse(message.error));
    } else {
      call.onResult(message.result);
    }
  }

  private onDrop(code: number, reason: string): void {
    this.socket = undefined;
    clearTimeout(this.stableTimer);
    clearTimeout(this.silenceTimer);
    const oversized =
      code === closeCodeMessageTooBig ? this.largestSentCall() : undefined;
    for (const call of [...this.calls.values()]) {
      if (call.kind === "control") {
        // Also when unsent: a socket that was already closing leaves a
        // call unsent, and the watch sends its own again on the next open.
        this.calls.delete(call.id);
        clearTimeout(call.timer);
        call.onDropped?.();
      } else if (!call.sent) {
        continue;
      } else if (call === oversized) {
        this.fail(call, messageTooLarge(call.method, reason));
      } else if (call.kind === "write") {
        this.fail(call, outcomeUnknown(call.method, code));
      } else {
        call.sent = false;
      }
    }
    if (this.state === "closed") return;

    this.hooks.onDisconnect();
    if (code === closeCodeUnauthorized) {
      this.stop(keyRejected(reason), true);
      return;
    }
    this.scheduleReconnect(code, reason);
  }

  /**
   * Returns the sent, unanswered call with the largest frame. A 1009
   * close names no request, and the server stops reading at the first
   * frame over its limit, so the largest frame is taken to be that one.
   */
  private largestSentCall(): PendingCall | undefined {
    const encoder = new TextEncoder();
    let largest: PendingCall | undefined;
    let largestBytes = -1;
    for (const call of this.calls.values()) {
      if (!call.sent) continue;
      const bytes = encoder.encode(call.frame).byteLength;
      if (bytes > largestBytes) {
        largest = call;
        largestBytes = bytes;
      }
    }
    return largest;
  }

  private onAttemptFailed(code: number, reason: string, cause: unknown): void {
    if (this.state === "closed") return;
    if (!this.everOpened) {
      this.stop(connectFailed(this.url, code, reason, cause), true);
      return;
    }
    this.scheduleReconnect(code, reason);
  }

  private scheduleReconnect(code: number, reason: string): void {
    this.reconnectAttempt++;
    const attempt = this.reconnectAttempt;
    if (attempt > this.options.maxReconnectAttempts) {
      this.stop(reconnectFailed(this.url, attempt - 1, code, reason), true);
      return;
    }
    const delayMs = reconnectDelayMs(
      attempt,
      this.options.initialReconnectDelayMs,
      this.options.maxReconnectDelayMs,
    );
    this.setState({
      state: "reconnecting",
      attempt,
      delayMs,
      closeCode: code,
      closeReason: reason,
    });
    this.reconnectTimer = setTimeout(() => this.openNextSocket(), delayMs);
  }

  /**
   * Ends the client for good. `error` fails the pending calls. With
   * `reported` set, which is every stop but close(), the watches and the
   * status listeners receive the error too.
   */
  private stop(error: KvError, reported: boolean): void {
    if (this.state === "closed") return;

    this.stopError = error;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.stableTimer);
    clearTimeout(this.silenceTimer);
    if (this.connecting !== undefined) {
      clearTimeout(this.connecting.timer);
      this.connecting.socket?.close();
      this.connecting = undefined;
    }
    this.generation++;
    const socket = this.socket;
    this.socket = undefined;
    // Watches end first: their own pending subscribe must not end them
    // with the error meant for the caller's calls.
    this.hooks.onStop(reported ? error : undefined);
    for (const call of [...this.calls.values()]) this.fail(call, error);
    this.setState(reported ? { state: "closed", error } : { state: "closed" });
    if (!this.everOpened) this.rejectFirstOpen(error);
    socket?.close(closeCodeNormal, "client closed");
  }

  private fail(call: PendingCall, error: KvError): void {
    this.calls.delete(call.id);
    clearTimeout(call.timer);
    call.onError(error);
  }

  private setState(event: StatusEvent): void {
    this.state = event.state;
    for (const listener of [...this.listeners]) callListener(listener, event);
  }
}
