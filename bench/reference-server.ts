/**
 * The ceiling that kvstream is measured against: a bare Node.js WebSocket
 * server (the same `ws` library) that speaks the same JSON-RPC framing
 * with no storage, no validation beyond parsing, and no authentication.
 * It handles kv/get, kv/set, kv/batch and watch/subscribe and sends each
 * set to the connections subscribed to its namespace or an ancestor.
 *
 * Values live in a Map so that kv/get responses carry the same bytes as
 * kvstream's. Nothing is written to disk. Writes to each socket are
 * coalesced per event loop turn as kvstream does, unless `--no-coalesce`
 * is given, so that the ratio measures everything but the write path.
 *
 * Run: node dist/bench/reference-server.js [port] [--no-coalesce]; it
 * prints the same `listening on ws://HOST:PORT/stream` line as
 * `kvstream serve`.
 */
import { createServer } from "node:http";

import { WebSocketServer, type WebSocket } from "ws";

import { WriteCoalescer } from "../src/server/write-coalescing.js";

const coalesce = !process.argv.includes("--no-coalesce");
const writers = new WeakMap<WebSocket, WriteCoalescer>();

function sendFrame(
  socket: WebSocket,
  text: string,
  bytes = Buffer.byteLength(text),
): void {
  writers.get(socket)?.beforeWrite(bytes);
  socket.send(text);
}

interface Entry {
  valueJson: string;
  version: number;
  updatedAt: number;
}

const entries = new Map<string, Entry>();
const subscribers = new Map<string, Set<WebSocket>>();
let seq = 0;

function entryKey(namespace: string, key: string): string {
  return `${namespace}\u0000${key}`;
}

function result(id: unknown, body: string): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${body}}`;
}

function error(id: unknown, code: number, message: string): string {
  return JSON.stringify({ jsonrpc: "2.0", id, error: { code, message } });
}

/** Stores a value and sends the change to every matching subscriber. */
function set(
  namespace: string,
  key: string,
  value: unknown,
): { version: number; seq: number; updatedAt: number } {
  const id = entryKey(namespace, key);
  const version = (entries.get(id)?.version ?? 0) + 1;
  const updatedAt = Date.now();
  const valueJson = JSON.stringify(value);
  entries.set(id, { valueJson, version, updatedAt });
  seq++;

  let text: string | undefined;
  let bytes = 0;
  const sent = new Set<WebSocket>();
  for (let scope = namespace; ;) {
    for (const socket of subscribers.get(scope) ?? []) {
      if (sent.has(socket)) continue;
      sent.add(socket);
      if (text === undefined) {
        text = `{"jsonrpc":"2.0","method":"watch/change","params":{"seq":${seq},"op":"set","namespace":${JSON.stringify(namespace)},"key":${JSON.stringify(key)},"value":${valueJson},"version":${version},"actor":"reference","timestamp":${updatedAt},"tenantId":"bench"}}`;
        bytes = Buffer.byteLength(text);
      }
      sendFrame(socket, text, bytes);
    }
    const slash = scope.lastIndexOf("/");
    if (slash < 0) break;
    scope = scope.slice(0, slash);
  }
  return { version, seq, updatedAt };
}

function handle(socket: WebSocket, message: any): string | null {
  const { id, method, params } = message ?? {};
  switch (method) {
    case "kv/get": {
      const entry = entries.get(entryKey(params.namespace, params.key));
      if (!entry) return error(id, -32004, "The key does not exist.");
      return result(
        id,
        `{"namespace":${JSON.stringify(params.namespace)},"key":${JSON.stringify(params.key)},"value":${entry.valueJson},"version":${entry.version},"updatedBy":"reference","updatedAt":${entry.updatedAt}}`,
      );
    }
    case "kv/set": {
      const change = set(params.namespace, params.key, params.value);
      return result(
        id,
        `{"namespace":${JSON.stringify(params.namespace)},"key":${JSON.stringify(params.key)},"version":${change.version},"updatedBy":"reference","updatedAt":${change.updatedAt},"seq":${change.seq}}`,
      );
    }
    case "kv/batch": {
      const results = (params.operations as any[]).map((operation) => {
        const change = set(operation.namespace, operation.key, operation.value);
        return {
          namespace: operation.namespace,
          key: operation.key,
          version: change.version,
          seq: change.seq,
        };
      });
      return result(id, JSON.stringify({ results }));
    }
    case "watch/subscribe": {
      let set = subscribers.get(params.namespace);
      if (!set) subscribers.set(params.namespace, (set = new Set()));
      set.add(socket);
      return result(
        id,
        JSON.stringify({
          namespace: params.namespace,
          seq,
          storeId: "reference",
        }),
      );
    }
    default:
      return error(id, -32601, `Unknown method '${method}'.`);
  }
}

function forget(socket: WebSocket): void {
  for (const [namespace, set] of subscribers) {
    if (set.delete(socket) && set.size === 0) subscribers.delete(namespace);
  }
}

const http = createServer((_request, response) => {
  response.writeHead(404).end();
});
const server = new WebSocketServer({
  server: http,
  path: "/stream",
  perMessageDeflate: false,
});
server.on("connection", (socket, request) => {
  if (coalesce) writers.set(socket, new WriteCoalescer(request.socket));
  socket.on("message", (data) => {
    let message: any;
    try {
      message = JSON.parse(data.toString());
    } catch {
      sendFrame(socket, error(null, -32700, "The message is not valid JSON."));
      return;
    }
    const replies = Array.isArray(message)
      ? message
          .map((entry) => handle(socket, entry))
          .filter((reply) => reply !== null)
      : [handle(socket, message)];
    sendFrame(
      socket,
      Array.isArray(message) ? `[${replies.join(",")}]` : replies[0]!,
    );
  });
  socket.on("close", () => forget(socket));
  socket.on("error", () => {});
});

const port = Number(
  process.argv.slice(2).find((arg) => /^\d+$/.test(arg)) ?? 0,
);
http.listen(port, "127.0.0.1", () => {
  const address = http.address();
  const port = typeof address === "object" && address ? address.port : 0;
  process.stdout.write(`listening on ws://127.0.0.1:${port}/stream\n`);
});

const stop = () => {
  for (const socket of server.clients) socket.terminate();
  server.close();
  http.close();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
