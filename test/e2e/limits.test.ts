import assert from "node:assert/strict";
import { test } from "node:test";

import WebSocket from "ws";

import { TestClient } from "../support/rpc-client.js";
import { useServerFixture } from "../support/server-fixture.js";
import { forEachStore } from "../support/stores.js";

const namespace = "tenant:acme/limits";
const requestsPerSecond = 5;
const pingIntervalMs = 200;

forEachStore("rate limit and liveness", (kind) => {
  const fixture = useServerFixture(kind, {
    keys: { acme: { tenant: "acme" } },
    args: [
      "--max-requests-per-second",
      String(requestsPerSecond),
      "--ping-interval-ms",
      String(pingIntervalMs),
    ],
  });

  test("requests over the rate get -32007", async () => {
    const client = await fixture.connect("acme");
    const responses = await Promise.all(
      Array.from({ length: requestsPerSecond * 3 }, (_, index) =>
        client.request("kv/set", { namespace, key: `k${index}`, value: index }),
      ),
    );

    const limited = responses.filter((response) => response.error);
    assert.ok(limited.length >= requestsPerSecond, `${limited.length} limited`);
    for (const response of limited) {
      assert.equal(response.error.code, -32007);
      assert.equal(typeof response.error.data.retryAfterMs, "number");
      assert.ok(response.error.data.retryAfterMs > 0);
    }

    // After a second the bucket is full again, so the read is not limited
    // and shows that the limited write changed nothing.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const key = `k${responses.indexOf(limited[0])}`;
    const error = await client.callError("kv/get", { namespace, key });
    assert.equal(error.code, -32004);
    await client.close();
  });

  test(
    "silent peer is dropped, answering one stays",
    { timeout: 10_000 },
    async () => {
      // autoPong: false makes this client ignore pings, as a dead peer would.
      const silent = new WebSocket(fixture.server.url, {
        headers: { authorization: `Bearer ${fixture.keys.acme.key}` },
        autoPong: false,
      });
      const opened = new Promise((resolve) => silent.once("open", resolve));
      const answering = await fixture.connect("acme");
      await opened;

      const closeCode = await new Promise<number>((resolve) =>
        silent.once("close", (code) => resolve(code)),
      );
      // Terminated without a close frame, as a dropped peer is.
      assert.equal(closeCode, 1006);
      assert.equal(answering.socket.readyState, WebSocket.OPEN);
      await answering.close();
    },
  );
});
