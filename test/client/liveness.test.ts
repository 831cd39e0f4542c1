import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { StatusEvent } from "../../src/client/index.js";
import { waitForState } from "../support/client-helpers.js";
import { useClientServer } from "../support/client-server.js";

describe("server silence", () => {
  // The server pings every 200 ms here, so a client that receives nothing for
  // two seconds can take the server as gone even though TCP still looks open.
  const fixture = useClientServer({
    key: { tenant: "quiet" },
    args: ["--ping-interval-ms", "200"],
  });

  it("silent server is dropped, then resumed", async () => {
    const namespace = "tenant:quiet/w";
    const client = await fixture.open({ serverSilenceTimeoutMs: 2_000 });
    const events: StatusEvent[] = [];
    client.onStatus((event) => events.push(event));
    const watch = client.watch(namespace);
    const first = await client.set({ namespace, key: "k", value: 1 });
    const iterator = watch[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value.seq, first.seq);

    // Pings keep an idle connection open: wait two silence timeouts.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    assert.equal(client.state, "open", "pings keep the connection");

    // A stopped process keeps its sockets open but sends nothing.
    fixture.server.process.kill("SIGSTOP");
    try {
      await waitForState(
        client,
        (state) => state !== "open",
        10_000,
        "the drop of the silent server",
      );
    } finally {
      fixture.server.process.kill("SIGCONT");
    }
    await waitForState(client, (state) => state === "open", 20_000, "reopen");
    const second = await client.set({ namespace, key: "k", value: 2 });
    const next = await iterator.next();

    const drop = events.find((event) => event.state === "reconnecting");
    assert.ok(drop, "the client reconnected");
    assert.match(
      drop.state === "reconnecting" ? drop.closeReason : "",
      /no ping or message from the server within 2000 ms/,
    );
    assert.equal(next.value.seq, second.seq);
    await iterator.return?.();
  });
});
