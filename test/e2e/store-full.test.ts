import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { TestClient } from "../support/rpc-client.js";
import { ServerFixture } from "../support/server-fixture.js";

const namespace = "tenant:acme/full";
const maxStoreBytes = 256 * 1024;

describe("store refusing writes", () => {
  // The test expects SQLITE_FULL from a full file, so it runs on SQLite only.
  const fixture = new ServerFixture("sqlite", {
    keys: { acme: { tenant: "acme" } },
    args: ["--max-store-bytes", String(maxStoreBytes)],
  });
  let client: TestClient;
  let lastAcknowledged: { key: string; seq: number; version: number };
  let failure: Record<string, any>;
  let failedKey: string;

  before(async () => {
    await fixture.start();
    client = await fixture.connect("acme");

    // Fill the file with distinct keys until a write is refused. 8 KiB
    // values reach a 256 KiB file within a few dozen writes.
    const value = "x".repeat(8 * 1024);
    for (let index = 0; index < 200; index++) {
      const key = `k${index}`;
      const response = await client.request("kv/set", {
        namespace,
        key,
        value,
      });
      if (response.error) {
        failure = response.error;
        failedKey = key;
        break;
      }
      lastAcknowledged = {
        key,
        seq: response.result.seq,
        version: response.result.version,
      };
    }
    assert.ok(failure, "the store never refused a write");
  });

  after(async () => {
    await client?.close();
    await fixture.stop();
  });

  test("write fails with -32001 and a reason", () => {
    assert.equal(failure.code, -32001);
    assert.equal(typeof failure.data.reason, "string");
    assert.match(failure.data.reason, /SQLITE_FULL/);
  });

  test("refused write changes nothing", async () => {
    const error = await client.callError("kv/get", {
      namespace,
      key: failedKey,
    });
    assert.equal(error.code, -32004);
  });

  test("reads go on while writes fail", async () => {
    const entry = await client.call("kv/get", {
      namespace,
      key: lastAcknowledged.key,
    });
    assert.equal(entry.version, lastAcknowledged.version);
  });

  test("readyz answers 503 while full", async () => {
    const response = await fetch(`${fixture.server.httpUrl}/readyz`);
    assert.equal(response.status, 503);
    await response.body?.cancel();
  });

  test("refused writes take no seq", async () => {
    const watch = await client.call("watch/subscribe", { namespace });
    assert.equal(watch.seq, lastAcknowledged.seq);
  });

  test("restart with room continues the seq", async () => {
    await client.close();
    await fixture.restart([]);
    client = await fixture.connect("acme");

    const result = await client.call("kv/set", {
      namespace,
      key: failedKey,
      value: "fits now",
    });
    assert.equal(result.seq, lastAcknowledged.seq + 1);

    const ready = await fetch(`${fixture.server.httpUrl}/readyz`);
    assert.equal(ready.status, 200);
    await ready.body?.cancel();
  });
});
