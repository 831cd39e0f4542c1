import WebSocket from "ws";

/** A JSON-RPC response or notification exactly as the server sent it. */
export type Message = Record<string, any>;

export interface CloseInfo {
  code: number;
  reason: string;
}

/**
 * A deliberately thin JSON-RPC client over a real WebSocket for tests: it
 * exposes raw frames, responses and notifications so that tests can check
 * the wire format, not a library's interpretation of it.
 */
export class TestClient {
  readonly socket: WebSocket;
  /** Every parsed frame received, in arrival order. */
  readonly received: any[] = [];
  /** Every `watch/change` notification's params, in arrival order. */
  readonly changes: Message[] = [];
  readonly closed: Promise<CloseInfo>;

  private nextId = 1;
  private readonly pending = new Map<string | number, (m: Message) => void>();
  private readonly waiters: Array<() => void> = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolveClose) => {
      socket.on("close", (code, reason) =>
        resolveClose({ code, reason: reason.toString() }),
      );
    });
    socket.on("message", (data, isBinary) => {
      const parsed = JSON.parse(isBinary ? String(data) : data.toString());
      this.received.push(parsed);
      if (!Array.isArray(parsed) && parsed.method === "watch/change") {
        this.changes.push(parsed.params);
      }
      if (!Array.isArray(parsed) && "id" in parsed) {
        const resolveResponse = this.pending.get(parsed.id);
        if (resolveResponse) {
          this.pending.delete(parsed.id);
          resolveResponse(parsed);
        }
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /**
   * Opens a connection. `apiKey` goes into the Authorization header unless
   * `protocols` is given, in which case only the subprotocols are sent.
   */
  static connect(
    url: string,
    options: {
      apiKey?: string;
      headers?: Record<string, string>;
      protocols?: string[];
      perMessageDeflate?: boolean;
    } = {},
  ): Promise<TestClient> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.apiKey !== undefined && options.protocols === undefined) {
      headers.authorization = `Bearer ${options.apiKey}`;
    }
    const socket = new WebSocket(url, options.protocols ?? [], {
      headers,
      perMessageDeflate: options.perMessageDeflate ?? false,
      maxPayload: 256 * 1024 * 1024,
    });
    const client = new TestClient(socket);
    return new Promise((resolveOpen, rejectOpen) => {
      socket.once("open", () => resolveOpen(client));
      socket.once("error", rejectOpen);
      socket.once("unexpected-response", (_request, response) => {
        rejectOpen(new Error(`HTTP ${response.statusCode}`));
      });
    });
  }

  /** Sends a request and resolves with the whole response object. */
  request(method: string, params?: unknown): Promise<Message> {
    const id = this.nextId++;
    const message: Message = { jsonrpc: "2.0", id, method };
    if (params !== undefined) message.params = params;
    const response = new Promise<Message>((resolveResponse) =>
      this.pending.set(id, resolveResponse),
    );
    this.socket.send(JSON.stringify(message));
    return response;
  }

  /** Sends a request and returns `result`, throwing on an error response. */
  async call(method: string, params?: unknown): Promise<any> {
    const response = await this.request(method, params);
    if (response.error) {
      const error = new Error(
        `${method} failed: ${JSON.stringify(response.error)}`,
      ) as Error & { rpc: unknown };
      error.rpc = response.error;
      throw error;
    }
    return response.result;
  }

  /** Sends a request and returns its `error` member, failing on success. */
  async callError(method: string, params?: unknown): Promise<Message> {
    const response = await this.request(method, params);
    if (!response.error) {
      throw new Error(
        `${method} succeeded, expected an error: ${JSON.stringify(response)}`,
      );
    }
    return response.error;
  }

  /** Sends one text frame as is. */
  sendRaw(text: string | Buffer, options: { binary?: boolean } = {}): void {
    this.socket.send(text, { binary: options.binary ?? false });
  }

  /** Resolves with the next frame received after this call. */
  nextFrame(timeoutMs = 5_000): Promise<any> {
    const count = this.received.length;
    return this.waitFor(() => this.received.length > count, timeoutMs).then(
      () => this.received[count],
    );
  }

  /** Waits until `condition` holds, re-checking after every frame. */
  waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolveWait, rejectWait) => {
      const timer = setTimeout(() => {
        rejectWait(new Error(`condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (condition()) {
          clearTimeout(timer);
          resolveWait();
        } else {
          this.waiters.push(check);
        }
      };
      this.waiters.push(check);
    });
  }

  /** Waits until at least `count` changes have arrived. */
  waitForChanges(count: number, timeoutMs = 5_000): Promise<Message[]> {
    return this.waitFor(() => this.changes.length >= count, timeoutMs).then(
      () => this.changes,
    );
  }

  close(): Promise<CloseInfo> {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(1000);
    return this.closed;
  }
}
