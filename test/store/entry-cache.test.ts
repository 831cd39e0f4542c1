import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { EntryCache } from "../../src/store/entry-cache.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { StoredEntry, WriteRequest } from "../../src/store/store.js";

function entry(key: string, valueJson: string, version = 1): StoredEntry {
  return {
    namespace: "tenant:t/ns",
    key,
    valueJson,
    version,
    updatedBy: "actor",
    updatedAt: 1,
  };
}

describe("EntryCache", () => {
  test("evicts the oldest entry", () => {
    // Each entry is about 200 bytes of overhead plus its strings.
    const cache = new EntryCache(700);
    cache.set(entry("a", "1"));
    cache.set(entry("b", "2"));
    cache.set(entry("c", "3"));
    cache.set(entry("d", "4"));

    assert.equal(cache.get("tenant:t/ns", "a"), undefined, "a was oldest");
    assert.equal(cache.get("tenant:t/ns", "b")?.valueJson, "2");
    assert.equal(cache.get("tenant:t/ns", "d")?.valueJson, "4");
  });

  test("update replaces only cached entries", () => {
    const cache = new EntryCache(10_000);
    cache.set(entry("a", "1"));
    cache.update(entry("a", "2", 2));
    cache.update(entry("b", "3"));

    assert.equal(cache.get("tenant:t/ns", "a")?.valueJson, "2");
    assert.equal(cache.get("tenant:t/ns", "b"), undefined);
  });

  test("entry over the bound is not kept", () => {
    const cache = new EntryCache(300);
    cache.set(entry("a", "x".repeat(500)));

    assert.equal(cache.get("tenant:t/ns", "a"), undefined);
  });
});

describe("SqliteStore reads", () => {
  let folder: string;
  const stores: SqliteStore[] = [];

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), "kvstream-cache-test-"));
  });

  after(async () => {
    for (const store of stores) await store.close();
    await rm(folder, { recursive: true, force: true });
  });

  function open(path: string): SqliteStore {
    const store = new SqliteStore({
      path,
      historyChanges: 1000,
      historySeconds: 3600,
      pruneIntervalMs: 0,
    });
    stores.push(store);
    return store;
  }

  function set(key: string, value: unknown): WriteRequest {
    return {
      tenantId: "t",
      actor: "actor",
      reportIndex: false,
      operations: [
        {
          op: "set",
          namespace: "tenant:t/ns",
          key,
          valueJson: JSON.stringify(value),
        },
      ],
    };
  }

  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

  test("get sees own writes and deletes", async () => {
    const store = open(join(folder, "own.db"));
    await store.write(set("k", 1));
    assert.equal((await store.get("tenant:t/ns", "k"))?.valueJson, "1");

    await store.write(set("k", 2));
    const second = await store.get("tenant:t/ns", "k");
    assert.equal(second?.valueJson, "2");
    assert.equal(second?.version, 2);

    await store.write({
      tenantId: "t",
      actor: "actor",
      reportIndex: false,
      operations: [{ op: "delete", namespace: "tenant:t/ns", key: "k" }],
    });
    assert.equal(await store.get("tenant:t/ns", "k"), null);
  });

  test("get sees another connection's write next turn", async () => {
    const path = join(folder, "shared.db");
    const reader = open(path);
    const writer = open(path);
    await writer.write(set("k", 1));
    assert.equal((await reader.get("tenant:t/ns", "k"))?.valueJson, "1");

    await writer.write(set("k", 2));
    await nextTurn();

    const entry = await reader.get("tenant:t/ns", "k");
    assert.equal(entry?.valueJson, "2");
    assert.equal(entry?.version, 2);
  });
});
