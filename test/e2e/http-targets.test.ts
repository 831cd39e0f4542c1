import assert from "node:assert/strict";
import { connect } from "node:net";
import { test } from "node:test";

import { useServerFixture } from "../support/server-fixture.js";
import { forEachStore } from "../support/stores.js";

/** Sends raw HTTP/1.1 text and returns the status line of the reply. */
function rawStatusLine(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    let reply = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => {
      reply += chunk;
      if (reply.includes("\r\n")) {
        socket.destroy();
        resolve(reply.split("\r\n")[0]);
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(reply.split("\r\n")[0]));
  });
}

const upgradeHeaders =
  "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

forEachStore("malformed request targets", (kind) => {
  const fixture = useServerFixture(kind);

  test("plain request gets 404", async () => {
    const status = await rawStatusLine(
      fixture.server.port,
      "GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.match(status, /^HTTP\/1\.1 404/);
  });

  test("upgrade request gets 404", async () => {
    const status = await rawStatusLine(
      fixture.server.port,
      `GET //[ HTTP/1.1\r\n${upgradeHeaders}`,
    );
    assert.match(status, /^HTTP\/1\.1 404/);
  });

  test("server still serves afterwards", async () => {
    const response = await fetch(`${fixture.server.httpUrl}/healthz`);
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.equal(fixture.server.process.exitCode, null);
  });
});
