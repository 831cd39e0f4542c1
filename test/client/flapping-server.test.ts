import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { WebSocketServer } from "ws";

import {
  connect,
  type KvClient,
  type StatusEvent,
} from "../../src/client/index.js";
import { withTimeout } from "../support/watch-helpers.js";

// A stand-in for a server that accepts each connection and then fails at
// once (close 1011), which the kvstream server cannot be made to do on
// demand. It sends no response, so no store is involved.
let server: WebSocketServer;
let url: string;
let failConnections = false;
let client: KvClient | undefined;

before(async () => {
  server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => server.once("listening", resolve));
  const { port } = server.address() as { port: number };
  url = `ws://127.0.0.1:${port}/stream`;
  server.on("connection", (socket) => {
    if (failConnections) socket.close(1011, "internal error");
  });
});

after(async () => {
  await client?.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test("backoff grows while each connection fails at once", async () => {
  client = await connect(url, {
    apiKey: "kvs_flapping_secret",
    initialReconnectDelayMs: 10,
    maxReconnectDelayMs: 40,
  });
  const reconnects: Array<Extract<StatusEvent, { state: "reconnecting" }>> = [];
  const fifthReconnect = new Promise<void>((resolve) => {
    client!.onStatus((event) => {
      if (event.state !== "reconnecting") return;
      reconnects.push(event);
      if (reconnects.length === 5) resolve();
    });
  });

  failConnections = true;
  for (const socket of server.clients) socket.close(1011, "internal error");
  await withTimeout(fifthReconnect, 10_000, "five reconnects");

  assert.deepEqual(
    reconnects.slice(0, 5).map((event) => event.attempt),
    [1, 2, 3, 4, 5],
  );
  assert.ok(reconnects.every((event) => event.closeCode === 1011));
});
