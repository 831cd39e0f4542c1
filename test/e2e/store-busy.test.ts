import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import Database from "better-sqlite3";

import { TestClient } from "../support/rpc-client.js";
import { ServerFixture } from "../support/server-fixture.js";

const namespace = "tenant:acme/busy";

describe("store locked by another process", () => {
  // The test locks the SQLite file itself, so it runs on SQLite only.
  const fixture = new ServerFixture("sqlite", {
    keys: { acme: { tenant: "acme" } },
  });
  let client: TestClient;

  before(async () => {
    await fixture.start();
    client = await fixture.connect("acme");
    await client.call("kv/set", { namespace, key: "before", value: 1 });
  });

  after(async () => {
    await client?.close();
    await fixture.stop();
  });

  test("write fails with -32001, then recovers", async () => {
    // Another process holds the write lock, as a stuck tool would.
    const other = new Database(fixture.store.file!, { timeout: 0 });
    other.exec("BEGIN IMMEDIATE");
    try {
      const error = await client.callError("kv/set", {
        namespace,
        key: "while-locked",
        value: 2,
      });
      assert.equal(error.code, -32001);
      assert.match(error.data.reason, /SQLITE_BUSY/);

      const entry = await client.call("kv/get", { namespace, key: "before" });
      assert.equal(entry.version, 1);
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }

    const result = await client.call("kv/set", {
      namespace,
      key: "after",
      value: 3,
    });
    assert.equal(result.seq, 2);
  });
});
