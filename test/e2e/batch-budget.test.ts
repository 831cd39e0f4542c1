import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { TestClient } from "../support/rpc-client.js";
import { ServerFixture } from "../support/server-fixture.js";
import { forEachStore } from "../support/stores.js";

const maxOutboundBytes = 1024 * 1024;
const namespace = "tenant:acme/budget";

forEachStore("batch response budget", (kind) => {
  const fixture = new ServerFixture(kind, {
    keys: { acme: { tenant: "acme" } },
    args: ["--max-outbound-bytes", String(maxOutboundBytes)],
  });
  let client: TestClient;

  before(async () => {
    await fixture.start();
    client = await fixture.connect("acme");
    const value = "b".repeat(60_000);
    for (let index = 0; index < 10; index++) {
      await client.call("kv/set", { namespace, key: `k${index}`, value });
    }
  });

  after(async () => {
    await client?.close();
    await fixture.stop();
  });

  test("reads past the budget get -32007", async () => {
    // Each kv/list page is about 600 KB, so the second one passes 1 MiB.
    const batch = Array.from({ length: 5 }, (_, index) => ({
      jsonrpc: "2.0",
      id: index + 1,
      method: "kv/list",
      params: { namespace },
    }));
    const reply = client.nextFrame(10_000);
    client.sendRaw(JSON.stringify(batch));
    const responses = ((await reply) as any[]).sort((a, b) => a.id - b.id);

    assert.equal(responses.length, 5);
    assert.equal(responses[0].result.items.length, 10);
    assert.equal(responses[1].result.items.length, 10);
    for (const response of responses.slice(2)) {
      assert.equal(response.error.code, -32007);
      assert.deepEqual(response.error.data, { limit: maxOutboundBytes });
    }
  });

  test("connection works after the batch", async () => {
    const entry = await client.call("kv/get", { namespace, key: "k0" });
    assert.equal(entry.version, 1);
  });

  test("refused write in batch not applied", async () => {
    const batch = [
      ...Array.from({ length: 3 }, (_, index) => ({
        jsonrpc: "2.0",
        id: 100 + index,
        method: "kv/list",
        params: { namespace },
      })),
      {
        jsonrpc: "2.0",
        id: 200,
        method: "kv/set",
        params: { namespace, key: "after-budget", value: 1 },
      },
    ];
    const reply = client.nextFrame(10_000);
    client.sendRaw(JSON.stringify(batch));
    const responses = (await reply) as any[];
    const write = responses.find((response) => response.id === 200);
    assert.equal(write.error.code, -32007);

    const error = await client.callError("kv/get", {
      namespace,
      key: "after-budget",
    });
    assert.equal(error.code, -32004);
  });
});
