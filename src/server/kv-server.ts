import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";

import type { Logger } from "pino";
import { WebSocketServer } from "ws";

import { KeyRegistry } from "../auth/key-registry.js";
import { RateLimiter } from "../auth/rate-limiter.js";
import { writeMethodNames } from "../methods/dispatch.js";
import { RawJson } from "../protocol/json-text.js";
import { buildOpenRpcDocument } from "../protocol/openrpc.js";
import {
  openStore,
  parseStoreLocation,
  type OpenedStore,
} from "../store/open-store.js";
import { WatchHub } from "../watch/watch-hub.js";
import type { ServerConfig } from "./config.js";
import { CloseCode, Connection } from "./connection.js";
import { handleHttpRpc } from "./http-rpc.js";
import { ServerMetrics } from "./metrics.js";
import type { ServerContext } from "./server-context.js";
import { requestPath } from "./request-path.js";
import { selectProtocol, tokenFromUpgrade } from "./upgrade-auth.js";
import { protocolVersion } from "../version.js";

const readinessTimeoutMs = 1000;
const shutdownGraceMs = 2000;

/**
 * The kvstream server: one HTTP server with the WebSocket endpoint
 * /stream, POST /rpc, and the health, metrics and OpenRPC endpoints.
 */
export class KvServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  private readonly context: ServerContext;
  private pingTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  private constructor(
    readonly config: ServerConfig,
    private readonly logger: Logger,
    private readonly opened: OpenedStore,
  ) {
    const store = opened.store;
    const hub = new WatchHub(store);
    const metrics = new ServerMetrics({
      subscriptions: () => hub.index.size,
      changesPublished: () => hub.publishedCount,
    });
    const keys = new KeyRegistry(store, logger, (keyId) =>
      this.closeConnectionsOfKey(keyId),
    );
    this.context = {
      config,
      logger,
      store,
      hub,
      keys,
      metrics,
      rateLimiter: new RateLimiter(config.maxRequestsPerSecond),
      openRpcDocument: new RawJson(
        JSON.stringify(buildOpenRpcDocument(protocolVersion)),
      ),
      isWriteMethod: (method) => writeMethodNames.has(method),
      observeRequest: (method, code) => metrics.observeRequest(method, code),
      forgetConnection: (connection) => {
        if (this.connections.delete(connection)) metrics.connections.dec();
      },
    };

    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.maxMessageBytes,
      perMessageDeflate: false,
      handleProtocols: selectProtocol,
    });
    this.http = createServer((request, response) =>
      this.route(request, response),
    );
    this.http.on("upgrade", (request, socket, head) =>
      this.upgrade(request, socket, head),
    );
  }

  /** Opens the store and listens; resolves once connections are accepted. */
  static async start(config: ServerConfig, logger: Logger): Promise<KvServer> {
    const opened = await openStore(parseStoreLocation(config.store), {
      historyChanges: config.historyChanges,
      historySeconds: config.historySeconds,
      exclusive: true,
      maxStoreBytes: config.maxStoreBytes,
      onPruneError: (error) =>
        logger.warn({ err: error }, "pruning change history failed; retrying"),
      onBackgroundError: (task, error) =>
        logger.warn({ err: error, task }, `${task} failed; retrying`),
    });
    const server = new KvServer(config, logger, opened);
    try {
      await server.context.keys.start();
      await new Promise<void>((resolve, reject) => {
        server.http.once("error", reject);
        server.http.listen(config.port, config.host, () => {
          server.http.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      server.context.keys.stop();
      await opened.close();
      throw error;
    }
    server.pingTimer = setInterval(
      () => server.pingAll(),
      config.pingIntervalMs,
    );
    return server;
  }

  get store() {
    return this.context.store;
  }

  get address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  private route(request: IncomingMessage, response: ServerResponse): void {
    const path = requestPath(request.url);
    const fail = (error: unknown) => {
      // A client that hangs up mid-request is not a server fault.
      const aborted =
        (error as NodeJS.ErrnoException).code === "ECONNRESET" ||
        (error as Error).message === "aborted";
      if (aborted) {
        this.logger.debug({ err: error, path }, "client aborted the request");
        return;
      }
      this.logger.error({ err: error, path }, "HTTP request failed");
      if (!response.headersSent) {
        response.writeHead(500, { "content-type": "application/json" });
      }
      response.end(JSON.stringify({ error: "internal error" }));
    };

    if (path === "/rpc") {
      if (request.method !== "POST") {
        sendJson(
          response,
          405,
          { error: "Use POST for /rpc." },
          { allow: "POST" },
        );
        return;
      }
      handleHttpRpc(request, response, this.context).catch(fail);
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      sendJson(
        response,
        405,
        { error: `Use GET for ${path}.` },
        { allow: "GET" },
      );
      return;
    }
    switch (path) {
      case "/healthz":
        sendJson(response, 200, { status: "ok" });
        return;
      case "/readyz":
        this.readiness(response).catch(fail);
        return;
      case "/metrics":
        this.context.metrics.registry.metrics().then((text) => {
          response.writeHead(200, {
            "content-type": this.context.metrics.registry.contentType,
          });
          response.end(text);
        }, fail);
        return;
      case "/openrpc.json":
        response.writeHead(200, { "content-type": "application/json" });
        response.end(this.context.openRpcDocument.text);
        return;
      default:
        sendJson(response, 404, {
          error: `No such path ${path}; WebSocket clients connect to /stream.`,
        });
    }
  }

  private async readiness(response: ServerResponse): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("the store did not respond within 1 s")),
        readinessTimeoutMs,
      );
    });
    try {
      await Promise.race([this.context.store.checkWritable(), timeout]);
      sendJson(response, this.stopping ? 503 : 200, {
        status: this.stopping ? "stopping" : "ready",
      });
    } catch (error) {
      const reason =
        (error as { data?: { reason?: string } }).data?.reason ??
        (error as Error).message;
      sendJson(response, 503, { status: "unavailable", reason });
    } finally {
      clearTimeout(timer);
    }
  }

  private upgrade(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): void {
    const path = requestPath(request.url);
    if (path !== "/stream" || this.stopping) {
      const status = this.stopping
        ? "503 Service Unavailable"
        : "404 Not Found";
      socket.end(
        `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
      return;
    }
    socket.on("error", () => socket.destroy());

    const token = tokenFromUpgrade(request);
    const authenticated = token
      ? this.context.keys.authenticate(token)
      : Promise.resolve(null);
    authenticated.then(
      (key) => {
        this.wss.handleUpgrade(request, socket, head, (ws) => {
          const connection = new Connection(ws, socket, key, this.context);
          this.connections.add(connection);
          this.context.metrics.connections.inc();
        });
      },
      (error) => {
        this.logger.warn({ err: error }, "authenticating a connection failed");
        socket.end(
          "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        );
      },
    );
  }

  private closeConnectionsOfKey(keyId: string): void {
    let closed = 0;
    for (const connection of this.connections) {
      if (connection.key?.id !== keyId) continue;
      connection.close(CloseCode.Unauthorized, "API key revoked");
      this.context.metrics.revocationCloses.inc();
      closed++;
    }
    this.logger.info(
      { keyId, closed },
      "API key revoked; closed its connections",
    );
  }

  /**
   * Pings every connection and drops those that have not sent a pong
   * for two intervals.
   */
  private pingAll(): void {
    const deadline = Date.now() - 2 * this.config.pingIntervalMs;
    for (const connection of this.connections) {
      if (connection.lastPongAt < deadline) connection.terminate();
      else connection.ping();
    }
  }

  /**
   * Stops accepting connections, closes open ones with 1001, lets queued
   * writes commit and closes the store.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.pingTimer);
    this.context.keys.stop();
    this.context.rateLimiter.stop();
    for (const connection of this.connections) {
      connection.close(CloseCode.GoingAway, "server shutting down");
    }
    await this.waitForConnectionsToClose(shutdownGraceMs);
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
    await this.opened.close();
  }

  /** Gives clients time to finish the close handshake, up to `ms`. */
  private async waitForConnectionsToClose(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.connections.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}
