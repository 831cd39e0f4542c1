import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";

import fc from "fast-check";

import type { ApiKeyRecord } from "../../src/auth/api-key.js";
import { ErrorCode, RpcError } from "../../src/protocol/errors.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type {
  Change,
  StoredEntry,
  WriteOperation,
  WriteRequest,
} from "../../src/store/store.js";

let folder: string;
let fileCount = 0;
const openStores: SqliteStore[] = [];

before(async () => {
  folder = await mkdtemp(join(tmpdir(), "kvstream-sqlite-test-"));
});

after(async () => {
  for (const store of openStores) await store.close();
  await rm(folder, { recursive: true, force: true });
});

/** Opens a store on a new file in the temp folder, or on `path` when given. */
function openStore(path?: string): { store: SqliteStore; path: string } {
  fileCount += 1;
  const file = path ?? join(folder, `store-${fileCount}.db`);
  const store = new SqliteStore({
    path: file,
    historyChanges: 100_000,
    historySeconds: 86_400,
    pruneIntervalMs: 0,
  });
  openStores.push(store);
  return { store, path: file };
}

function setOp(
  namespace: string,
  key: string,
  value: unknown,
  cas?: number,
): WriteOperation {
  const operation: WriteOperation = {
    op: "set",
    namespace,
    key,
    valueJson: JSON.stringify(value),
  };
  if (cas !== undefined) operation.cas = cas;
  return operation;
}

function deleteOp(
  namespace: string,
  key: string,
  cas?: number,
): WriteOperation {
  const operation: WriteOperation = { op: "delete", namespace, key };
  if (cas !== undefined) operation.cas = cas;
  return operation;
}

function writeRequest(
  operations: WriteOperation[],
  options: { tenantId?: string; actor?: string; reportIndex?: boolean } = {},
): WriteRequest {
  return {
    tenantId: options.tenantId ?? "acme",
    actor: options.actor ?? "tester",
    operations,
    reportIndex: options.reportIndex ?? false,
  };
}

async function set(
  store: SqliteStore,
  namespace: string,
  key: string,
  value: unknown,
  cas?: number,
): Promise<Change> {
  const [change] = await store.write(
    writeRequest([setOp(namespace, key, value, cas)], {
      tenantId: tenantOfNamespace(namespace),
    }),
  );
  return change;
}

async function remove(
  store: SqliteStore,
  namespace: string,
  key: string,
  cas?: number,
): Promise<Change> {
  const [change] = await store.write(
    writeRequest([deleteOp(namespace, key, cas)], {
      tenantId: tenantOfNamespace(namespace),
    }),
  );
  return change;
}

function tenantOfNamespace(namespace: string): string {
  return namespace.slice("tenant:".length).split("/")[0];
}

/** Awaits `promise`, expects an RpcError with `code`, and returns it. */
async function expectRpcError(
  promise: Promise<unknown>,
  code: number,
): Promise<RpcError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RpcError, String(error));
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected an RpcError with code ${code}`);
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

async function listAll(
  store: SqliteStore,
  namespace: string,
  prefix: string,
  limit: number,
): Promise<StoredEntry[]> {
  const items: StoredEntry[] = [];
  let afterKey: string | null = null;
  for (let page = 0; page < 10_000; page++) {
    const result = await store.list({
      namespace,
      prefix,
      afterKey,
      limit,
      maxBytes: 4 * 1024 * 1024,
    });
    assert.ok(result.items.length <= limit);
    items.push(...result.items);
    if (!result.more) return items;
    assert.ok(
      result.items.length > 0,
      "a page with more items must not be empty",
    );
    afterKey = result.items[result.items.length - 1].key;
  }
  assert.fail("paging did not end");
}

describe("SqliteStore versions", () => {
  test("create, update, delete, re-create", async () => {
    const { store } = openStore();
    const ns = "tenant:acme/v";
    const created = await set(store, ns, "k", { n: 1 });
    assert.equal(created.version, 1);
    assert.equal(created.op, "set");
    assert.equal(created.valueJson, '{"n":1}');

    const updated = await set(store, ns, "k", { n: 2 });
    assert.equal(updated.version, 2);

    const deleted = await remove(store, ns, "k");
    assert.equal(deleted.version, 3);
    assert.equal(deleted.op, "delete");
    assert.equal(Object.hasOwn(deleted, "valueJson"), false);
    assert.equal(await store.get(ns, "k"), null);

    const recreated = await set(store, ns, "k", "again");
    assert.equal(recreated.version, 4);

    const entry = await store.get(ns, "k");
    assert.ok(entry);
    assert.equal(entry.version, 4);
    assert.equal(entry.valueJson, '"again"');
    assert.equal(entry.updatedBy, "tester");
    assert.equal(entry.updatedAt, recreated.timestamp);
  });

  test("change carries actor and timestamp", async () => {
    const { store } = openStore();
    const before = Date.now();
    const [change] = await store.write(
      writeRequest([setOp("tenant:acme", "k", 1)], { actor: "auth0|u1" }),
    );
    assert.equal(change.actor, "auth0|u1");
    assert.equal(change.tenantId, "acme");
    assert.equal(change.namespace, "tenant:acme");
    assert.equal(change.key, "k");
    assert.ok(change.timestamp >= before);
    assert.ok(change.timestamp <= Date.now());
    const entry = await store.get("tenant:acme", "k");
    assert.equal(entry?.updatedBy, "auth0|u1");
  });

  test("values stored as sent", async () => {
    const { store } = openStore();
    const text = '{"__proto__":{"a":"\\u0000"},"b":[1e-7,"😀"]}';
    await store.write(
      writeRequest([
        { op: "set", namespace: "tenant:acme", key: "raw", valueJson: text },
      ]),
    );
    assert.equal((await store.get("tenant:acme", "raw"))?.valueJson, text);
    await set(store, "tenant:acme", "null", null);
    assert.equal((await store.get("tenant:acme", "null"))?.valueJson, "null");
  });
});

describe("SqliteStore compare-and-swap", () => {
  test("cas 0 creates only if absent", async () => {
    const { store } = openStore();
    const created = await set(store, "tenant:acme", "k", 1, 0);
    assert.equal(created.version, 1);

    const error = await expectRpcError(
      set(store, "tenant:acme", "k", 2, 0),
      ErrorCode.CasConflict,
    );
    assert.deepEqual(error.data, {
      namespace: "tenant:acme",
      key: "k",
      expected: 0,
      actual: 1,
    });
  });

  test("cas matching version writes", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "k", 1);
    const updated = await set(store, "tenant:acme", "k", 2, 1);
    assert.equal(updated.version, 2);
  });

  test("conflict reports expected and actual", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "k", 1);
    await set(store, "tenant:acme", "k", 2);
    const error = await expectRpcError(
      set(store, "tenant:acme", "k", 3, 1),
      ErrorCode.CasConflict,
    );
    assert.deepEqual(error.data, {
      namespace: "tenant:acme",
      key: "k",
      expected: 1,
      actual: 2,
    });
    assert.equal((await store.get("tenant:acme", "k"))?.valueJson, "2");
  });

  test("deleted key has actual 0", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "k", 1);
    await remove(store, "tenant:acme", "k");

    // The row keeps version 2, but a deleted key counts as version 0.
    const error = await expectRpcError(
      set(store, "tenant:acme", "k", 3, 2),
      ErrorCode.CasConflict,
    );
    assert.deepEqual(error.data, {
      namespace: "tenant:acme",
      key: "k",
      expected: 2,
      actual: 0,
    });

    const recreated = await set(store, "tenant:acme", "k", 3, 0);
    assert.equal(recreated.version, 3);
  });

  test("never-written key has actual 0", async () => {
    const { store } = openStore();
    const error = await expectRpcError(
      set(store, "tenant:acme", "k", 1, 4),
      ErrorCode.CasConflict,
    );
    assert.deepEqual(error.data, {
      namespace: "tenant:acme",
      key: "k",
      expected: 4,
      actual: 0,
    });
  });

  test("delete of missing key", async () => {
    const { store } = openStore();
    const error = await expectRpcError(
      remove(store, "tenant:acme", "missing"),
      ErrorCode.NotFound,
    );
    assert.deepEqual(error.data, { namespace: "tenant:acme", key: "missing" });
  });

  test("delete missing with cas 5", async () => {
    const { store } = openStore();
    const error = await expectRpcError(
      remove(store, "tenant:acme", "missing", 5),
      ErrorCode.CasConflict,
    );
    assert.deepEqual(error.data, {
      namespace: "tenant:acme",
      key: "missing",
      expected: 5,
      actual: 0,
    });
  });

  test("delete missing with cas 0", async () => {
    const { store } = openStore();
    const error = await expectRpcError(
      remove(store, "tenant:acme", "missing", 0),
      ErrorCode.NotFound,
    );
    assert.deepEqual(error.data, { namespace: "tenant:acme", key: "missing" });
  });

  test("delete of deleted key", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "k", 1);
    await remove(store, "tenant:acme", "k");
    const error = await expectRpcError(
      remove(store, "tenant:acme", "k"),
      ErrorCode.NotFound,
    );
    assert.deepEqual(error.data, { namespace: "tenant:acme", key: "k" });
    const conflict = await expectRpcError(
      remove(store, "tenant:acme", "k", 2),
      ErrorCode.CasConflict,
    );
    assert.deepEqual(conflict.data, {
      namespace: "tenant:acme",
      key: "k",
      expected: 2,
      actual: 0,
    });
  });

  test("delete with matching cas", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "k", 1);
    const deleted = await remove(store, "tenant:acme", "k", 1);
    assert.equal(deleted.version, 2);
  });

  test("failed writes take no seq", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "a", 1);
    await expectRpcError(
      set(store, "tenant:acme", "a", 2, 7),
      ErrorCode.CasConflict,
    );
    await expectRpcError(
      remove(store, "tenant:acme", "nope"),
      ErrorCode.NotFound,
    );
    const next = await set(store, "tenant:acme", "b", 1);
    assert.equal(next.seq, 2);
    assert.equal(await store.latestSeq("acme"), 2);
  });
});

describe("SqliteStore group commit", () => {
  test("failing request leaves the others", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "existing", 0);

    const committed: Change[][] = [];
    store.onCommit((changes) => committed.push(changes));

    // Issued in the same tick, so one flush commits them together.
    const first = store.write(writeRequest([setOp("tenant:acme", "a", 1)]));
    const failing = store.write(
      writeRequest([
        setOp("tenant:acme", "b", 1),
        setOp("tenant:acme", "existing", 9, 5),
      ]),
    );
    const third = store.write(writeRequest([setOp("tenant:acme", "c", 1)]));
    const otherTenant = store.write(
      writeRequest([setOp("tenant:other", "d", 1)], { tenantId: "other" }),
    );

    const [firstChanges, thirdChanges, otherChanges] = await Promise.all([
      first,
      third,
      otherTenant,
    ]);
    const error = await expectRpcError(failing, ErrorCode.CasConflict);
    assert.deepEqual(error.data, {
      namespace: "tenant:acme",
      key: "existing",
      expected: 5,
      actual: 1,
    });

    assert.equal(firstChanges[0].seq, 2);
    assert.equal(thirdChanges[0].seq, 3);
    assert.equal(otherChanges[0].seq, 1);

    assert.equal((await store.get("tenant:acme", "a"))?.version, 1);
    assert.equal(await store.get("tenant:acme", "b"), null);
    assert.equal((await store.get("tenant:acme", "c"))?.version, 1);
    assert.equal((await store.get("tenant:acme", "existing"))?.valueJson, "0");
    assert.equal(await store.latestSeq("acme"), 3);

    const history = await store.readChanges({
      tenantId: "acme",
      namespace: "tenant:acme",
      afterSeq: 0,
      uptoSeq: 100,
      limit: 100,
    });
    assert.deepEqual(
      history.map((change) => change.seq),
      [1, 2, 3],
    );
    assert.deepEqual(
      history.map((change) => change.key),
      ["existing", "a", "c"],
    );

    assert.equal(committed.length, 1);
    assert.deepEqual(
      committed[0].map((change) => [change.tenantId, change.seq, change.key]),
      [
        ["acme", 2, "a"],
        ["acme", 3, "c"],
        ["other", 1, "d"],
      ],
    );
  });

  test("failing first request of a tenant", async () => {
    const { store } = openStore();
    const failing = store.write(
      writeRequest([deleteOp("tenant:acme", "missing")]),
    );
    const second = store.write(writeRequest([setOp("tenant:acme", "k", 1)]));
    await expectRpcError(failing, ErrorCode.NotFound);
    const [change] = await second;
    assert.equal(change.seq, 1);
    assert.equal(await store.latestSeq("acme"), 1);
  });

  test("same key twice in one flush", async () => {
    const { store } = openStore();
    const first = store.write(writeRequest([setOp("tenant:acme", "k", 1, 0)]));
    const second = store.write(writeRequest([setOp("tenant:acme", "k", 2, 0)]));
    const third = store.write(writeRequest([setOp("tenant:acme", "k", 3, 1)]));
    assert.equal((await first)[0].version, 1);
    const conflict = await expectRpcError(second, ErrorCode.CasConflict);
    assert.deepEqual(conflict.data, {
      namespace: "tenant:acme",
      key: "k",
      expected: 0,
      actual: 1,
    });
    const [change] = await third;
    assert.equal(change.version, 2);
    assert.equal(change.seq, 2);
  });

  test("closed store rejects writes", async () => {
    const { store } = openStore();
    await store.close();
    const error = await expectRpcError(
      store.write(writeRequest([setOp("tenant:acme", "k", 1)])),
      ErrorCode.StoreUnavailable,
    );
    assert.equal(typeof error.data?.reason, "string");
  });

  test("close flushes queued writes", async () => {
    const { store, path } = openStore();
    const pending = store.write(writeRequest([setOp("tenant:acme", "k", 1)]));
    await store.close();
    const [change] = await pending;
    assert.equal(change.seq, 1);

    const { store: reopened } = openStore(path);
    assert.equal((await reopened.get("tenant:acme", "k"))?.valueJson, "1");
  });
});

describe("SqliteStore batch", () => {
  test("batch applies in order", async () => {
    const { store } = openStore();
    const changes = await store.write(
      writeRequest([
        setOp("tenant:acme", "k", 1),
        setOp("tenant:acme", "k", 2, 1),
        setOp("tenant:acme/x", "j", 3),
        deleteOp("tenant:acme", "k", 2),
      ]),
    );
    assert.deepEqual(
      changes.map((change) => [
        change.seq,
        change.op,
        change.namespace,
        change.key,
        change.version,
      ]),
      [
        [1, "set", "tenant:acme", "k", 1],
        [2, "set", "tenant:acme", "k", 2],
        [3, "set", "tenant:acme/x", "j", 1],
        [4, "delete", "tenant:acme", "k", 3],
      ],
    );
    assert.equal(await store.get("tenant:acme", "k"), null);
  });

  test("failing operation writes nothing", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "keep", "before");
    const error = await expectRpcError(
      store.write(
        writeRequest(
          [
            setOp("tenant:acme", "keep", "after"),
            setOp("tenant:acme", "new", 1),
            deleteOp("tenant:acme", "missing"),
            setOp("tenant:acme", "later", 1),
          ],
          { reportIndex: true },
        ),
      ),
      ErrorCode.NotFound,
    );
    assert.deepEqual(error.data, {
      namespace: "tenant:acme",
      key: "missing",
      index: 2,
    });

    assert.equal(
      (await store.get("tenant:acme", "keep"))?.valueJson,
      '"before"',
    );
    assert.equal((await store.get("tenant:acme", "keep"))?.version, 1);
    assert.equal(await store.get("tenant:acme", "new"), null);
    assert.equal(await store.get("tenant:acme", "later"), null);
    assert.equal(await store.latestSeq("acme"), 1);

    const page = await store.namespaces({
      namespace: "tenant:acme",
      afterNamespace: null,
      limit: 10,
    });
    assert.deepEqual(page.items, [{ namespace: "tenant:acme", keys: 1 }]);
  });

  test("cas conflict carries index", async () => {
    const { store } = openStore();
    const error = await expectRpcError(
      store.write(
        writeRequest(
          [setOp("tenant:acme", "a", 1), setOp("tenant:acme", "a", 2, 0)],
          {
            reportIndex: true,
          },
        ),
      ),
      ErrorCode.CasConflict,
    );
    assert.deepEqual(error.data, {
      namespace: "tenant:acme",
      key: "a",
      expected: 0,
      actual: 1,
      index: 1,
    });
    assert.equal(await store.get("tenant:acme", "a"), null);
  });

  test("single write has no index", async () => {
    const { store } = openStore();
    const error = await expectRpcError(
      store.write(
        writeRequest([deleteOp("tenant:acme", "missing")], {
          reportIndex: false,
        }),
      ),
      ErrorCode.NotFound,
    );
    assert.equal(Object.hasOwn(error.data ?? {}, "index"), false);
  });
});

describe("SqliteStore seq", () => {
  test("per tenant and gapless", async () => {
    const { store } = openStore();
    const seqs: Record<string, number[]> = { acme: [], other: [] };
    for (let round = 0; round < 5; round++) {
      for (const tenant of ["acme", "other"]) {
        const changes = await store.write(
          writeRequest(
            [
              setOp(`tenant:${tenant}`, `k${round}`, round),
              setOp(`tenant:${tenant}/x`, "k", round),
            ],
            { tenantId: tenant },
          ),
        );
        seqs[tenant].push(...changes.map((change) => change.seq));
      }
    }
    const expected = Array.from({ length: 10 }, (_, index) => index + 1);
    assert.deepEqual(seqs.acme, expected);
    assert.deepEqual(seqs.other, expected);
    assert.equal(await store.latestSeq("acme"), 10);
    assert.equal(await store.latestSeq("other"), 10);
    assert.equal(await store.latestSeq("nobody"), 0);
  });

  test("concurrent writes stay gapless", async () => {
    const { store } = openStore();
    const writes: Promise<Change[]>[] = [];
    for (let index = 0; index < 30; index++) {
      writes.push(
        store.write(
          writeRequest([setOp("tenant:acme", `k${index % 7}`, index)]),
        ),
      );
      if (index % 4 === 0)
        await new Promise((resolve) => setImmediate(resolve));
    }
    const seqs = (await Promise.all(writes)).flat().map((change) => change.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: 30 }, (_, index) => index + 1),
    );
  });

  test("history bounds of a tenant", async () => {
    const { store } = openStore();
    assert.deepEqual(await store.historyBounds("acme"), {
      oldestSeq: 1,
      latestSeq: 0,
    });
    await set(store, "tenant:acme", "a", 1);
    await set(store, "tenant:acme", "b", 1);
    assert.deepEqual(await store.historyBounds("acme"), {
      oldestSeq: 1,
      latestSeq: 2,
    });
  });
});

describe("SqliteStore list", () => {
  test("pages in key order", async () => {
    const { store } = openStore();
    const keys = ["b", "a", "d", "c", "e"];
    for (const key of keys) await set(store, "tenant:acme", key, key);

    const first = await store.list({
      namespace: "tenant:acme",
      prefix: "",
      afterKey: null,
      limit: 2,
      maxBytes: 1 << 22,
    });
    assert.deepEqual(
      first.items.map((item) => item.key),
      ["a", "b"],
    );
    assert.equal(first.more, true);

    const second = await store.list({
      namespace: "tenant:acme",
      prefix: "",
      afterKey: "b",
      limit: 2,
      maxBytes: 1 << 22,
    });
    assert.deepEqual(
      second.items.map((item) => item.key),
      ["c", "d"],
    );
    assert.equal(second.more, true);

    const last = await store.list({
      namespace: "tenant:acme",
      prefix: "",
      afterKey: "d",
      limit: 2,
      maxBytes: 1 << 22,
    });
    assert.deepEqual(
      last.items.map((item) => item.key),
      ["e"],
    );
    assert.equal(last.more, false);
  });

  test("exact page size has no more", async () => {
    const { store } = openStore();
    for (const key of ["a", "b"]) await set(store, "tenant:acme", key, 1);
    const page = await store.list({
      namespace: "tenant:acme",
      prefix: "",
      afterKey: null,
      limit: 2,
      maxBytes: 1 << 22,
    });
    assert.equal(page.items.length, 2);
    assert.equal(page.more, false);
  });

  test("only this namespace", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "a", 1);
    await set(store, "tenant:acme/x", "b", 1);
    await set(store, "tenant:acme2", "c", 1);
    const page = await listAll(store, "tenant:acme", "", 10);
    assert.deepEqual(
      page.map((item) => item.key),
      ["a"],
    );
  });

  test("deleted keys are not listed", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "a", 1);
    await set(store, "tenant:acme", "b", 1);
    await remove(store, "tenant:acme", "a");
    const page = await listAll(store, "tenant:acme", "", 10);
    assert.deepEqual(
      page.map((item) => item.key),
      ["b"],
    );
  });

  test("empty namespace gives no items", async () => {
    const { store } = openStore();
    const page = await store.list({
      namespace: "tenant:none",
      prefix: "",
      afterKey: null,
      limit: 10,
      maxBytes: 1 << 22,
    });
    assert.deepEqual(page, { items: [], more: false });
  });

  test("byte limit ends page early", async () => {
    const { store } = openStore();
    const big = "x".repeat(1000);
    for (const key of ["a", "b", "c"])
      await set(store, "tenant:acme", key, big);
    const page = await store.list({
      namespace: "tenant:acme",
      prefix: "",
      afterKey: null,
      limit: 10,
      maxBytes: 2500,
    });
    assert.deepEqual(
      page.items.map((item) => item.key),
      ["a", "b"],
    );
    assert.equal(page.more, true);
  });

  test("oversized first item still listed", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "a", "x".repeat(1000));
    await set(store, "tenant:acme", "b", 1);
    const page = await store.list({
      namespace: "tenant:acme",
      prefix: "",
      afterKey: null,
      limit: 10,
      maxBytes: 10,
    });
    assert.deepEqual(
      page.items.map((item) => item.key),
      ["a"],
    );
    assert.equal(page.more, true);
  });

  test("byte limit counts escaped JSON", async () => {
    const { store } = openStore();
    // Each '"' in a key takes two bytes of JSON (\"), and a page must still
    // end once the JSON of its items reaches maxBytes.
    const maxBytes = 5000;
    for (const letter of ["a", "b", "c", "d", "e"]) {
      await set(store, "tenant:acme", letter + '"'.repeat(1000), 1);
    }
    const page = await store.list({
      namespace: "tenant:acme",
      prefix: "",
      afterKey: null,
      limit: 10,
      maxBytes,
    });
    assert.equal(page.more, true);

    // The item that crosses the limit may end the page, so the items before
    // the last one must fit.
    const itemsJson = page.items.slice(0, -1).map((item) =>
      JSON.stringify({
        key: item.key,
        value: JSON.parse(item.valueJson),
        version: item.version,
        updatedBy: item.updatedBy,
        updatedAt: item.updatedAt,
      }),
    );
    const bytes = Buffer.byteLength(`[${itemsJson.join(",")}]`);
    assert.ok(
      bytes <= maxBytes,
      `${page.items.length} items; all but the last come to ${bytes} bytes of JSON, over ${maxBytes}`,
    );
  });

  test("prefix characters are literal", async () => {
    const { store } = openStore();
    for (const key of ["%a", "_a", "*a", "xa", "a%", "%", "\\a"])
      await set(store, "tenant:acme", key, 1);
    assert.deepEqual(
      (await listAll(store, "tenant:acme", "%", 10)).map((item) => item.key),
      ["%", "%a"],
    );
    assert.deepEqual(
      (await listAll(store, "tenant:acme", "_", 10)).map((item) => item.key),
      ["_a"],
    );
    assert.deepEqual(
      (await listAll(store, "tenant:acme", "*", 10)).map((item) => item.key),
      ["*a"],
    );
    assert.deepEqual(
      (await listAll(store, "tenant:acme", "\\", 10)).map((item) => item.key),
      ["\\a"],
    );
  });

  test("prefix before U+10FFFF keys", async () => {
    const { store } = openStore();
    const keys = [
      "p",
      "p\u{10FFFF}",
      "p\u{10FFFF}\u{10FFFF}",
      "p\u{10FFFF}x",
      "q",
      "o\u{10FFFF}",
      "p\uFFFF",
      "p\u{10000}",
    ];
    for (const key of keys) await set(store, "tenant:acme", key, 1);
    const listed = (await listAll(store, "tenant:acme", "p", 2)).map(
      (item) => item.key,
    );
    const expected = keys
      .filter((key) => key.startsWith("p"))
      .sort(compareUtf8);
    assert.deepEqual(listed, expected);

    const astral = (await listAll(store, "tenant:acme", "p\u{10FFFF}", 10)).map(
      (item) => item.key,
    );
    assert.deepEqual(astral, [
      "p\u{10FFFF}",
      "p\u{10FFFF}x",
      "p\u{10FFFF}\u{10FFFF}",
    ]);
  });

  test("UTF-8 order, not UTF-16 order", async () => {
    const { store } = openStore();
    // U+10000 sorts before U+FFFF in UTF-16 (D800 DC00), but after it in UTF-8.
    const keys = ["\uFFFF", "\u{10000}", "\uE000", "z", "é"];
    for (const key of keys) await set(store, "tenant:acme", key, 1);
    const listed = (await listAll(store, "tenant:acme", "", 2)).map(
      (item) => item.key,
    );
    assert.deepEqual(listed, ["z", "é", "\uE000", "\uFFFF", "\u{10000}"]);
  });

  test("property: prefix listing in byte order", async () => {
    const { store } = openStore();
    const alphabet = [
      "a",
      "b",
      "/",
      "%",
      "_",
      "é",
      "\u0080",
      "\u07FF",
      "\u0800",
      "€",
      "\uE000",
      "\uFFFF",
      "\u{10000}",
      "😀",
      "\u{10FFFF}",
    ];
    const text = (minLength: number) =>
      fc
        .array(fc.constantFrom(...alphabet), { minLength, maxLength: 4 })
        .map((parts) => parts.join(""));

    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(text(1), { maxLength: 25 }),
        text(0),
        fc.integer({ min: 1, max: 6 }),
        async (randomKeys, prefix, limit) => {
          run += 1;
          const namespace = `tenant:prop/run${run}`;
          const keys = new Set(randomKeys);
          if (prefix !== "") {
            keys.add(prefix);
            keys.add(`${prefix}\u{10FFFF}`);
            keys.add(`${prefix}\u{10FFFF}a`);
          }
          await store.write(
            writeRequest(
              [...keys].map((key) => setOp(namespace, key, key)),
              { tenantId: "prop" },
            ),
          );

          const expected = [...keys]
            .filter((key) => key.startsWith(prefix))
            .sort(compareUtf8);
          const listed = await listAll(store, namespace, prefix, limit);
          assert.deepEqual(
            listed.map((item) => item.key),
            expected,
          );
          for (const item of listed)
            assert.equal(item.valueJson, JSON.stringify(item.key));
        },
      ),
      { numRuns: 120 },
    );
  });
});

describe("SqliteStore namespaces", () => {
  test("counts live keys per namespace", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "a", 1);
    await set(store, "tenant:acme", "b", 1);
    await set(store, "tenant:acme", "b", 2);
    await set(store, "tenant:acme/x", "a", 1);
    await set(store, "tenant:acme/x/y", "a", 1);
    await set(store, "tenant:acme/xy", "a", 1);
    await set(store, "tenant:acme2", "a", 1);

    const page = await store.namespaces({
      namespace: "tenant:acme",
      afterNamespace: null,
      limit: 100,
    });
    assert.deepEqual(page.items, [
      { namespace: "tenant:acme", keys: 2 },
      { namespace: "tenant:acme/x", keys: 1 },
      { namespace: "tenant:acme/x/y", keys: 1 },
      { namespace: "tenant:acme/xy", keys: 1 },
    ]);
    assert.equal(page.more, false);

    const below = await store.namespaces({
      namespace: "tenant:acme/x",
      afterNamespace: null,
      limit: 100,
    });
    assert.deepEqual(below.items, [
      { namespace: "tenant:acme/x", keys: 1 },
      { namespace: "tenant:acme/x/y", keys: 1 },
    ]);
  });

  test("delete drops an empty namespace", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme/x", "a", 1);
    await set(store, "tenant:acme/x", "b", 1);
    await remove(store, "tenant:acme/x", "a");
    let page = await store.namespaces({
      namespace: "tenant:acme",
      afterNamespace: null,
      limit: 100,
    });
    assert.deepEqual(page.items, [{ namespace: "tenant:acme/x", keys: 1 }]);

    await remove(store, "tenant:acme/x", "b");
    page = await store.namespaces({
      namespace: "tenant:acme",
      afterNamespace: null,
      limit: 100,
    });
    assert.deepEqual(page.items, []);

    await set(store, "tenant:acme/x", "a", 1);
    page = await store.namespaces({
      namespace: "tenant:acme",
      afterNamespace: null,
      limit: 100,
    });
    assert.deepEqual(page.items, [{ namespace: "tenant:acme/x", keys: 1 }]);
  });

  test("set then delete in one batch", async () => {
    const { store } = openStore();
    await store.write(
      writeRequest([
        setOp("tenant:acme/t", "k", 1),
        deleteOp("tenant:acme/t", "k"),
      ]),
    );
    const page = await store.namespaces({
      namespace: "tenant:acme",
      afterNamespace: null,
      limit: 100,
    });
    assert.deepEqual(page.items, []);
  });

  test("namespaces in UTF-8 byte order", async () => {
    const { store } = openStore();
    const namespaces = [
      "tenant:acme/\u{10000}",
      "tenant:acme/\uFFFF",
      "tenant:acme/z",
      "tenant:acme/é",
    ];
    for (const namespace of namespaces) await set(store, namespace, "k", 1);
    const page = await store.namespaces({
      namespace: "tenant:acme",
      afterNamespace: null,
      limit: 100,
    });
    assert.deepEqual(
      page.items.map((item) => item.namespace),
      [...namespaces].sort(compareUtf8),
    );
  });

  test("paging by namespace", async () => {
    const { store } = openStore();
    for (const namespace of [
      "tenant:acme/c",
      "tenant:acme/a",
      "tenant:acme/b",
    ]) {
      await set(store, namespace, "k", 1);
    }
    const first = await store.namespaces({
      namespace: "tenant:acme",
      afterNamespace: null,
      limit: 2,
    });
    assert.deepEqual(
      first.items.map((item) => item.namespace),
      ["tenant:acme/a", "tenant:acme/b"],
    );
    assert.equal(first.more, true);
    const second = await store.namespaces({
      namespace: "tenant:acme",
      afterNamespace: "tenant:acme/b",
      limit: 2,
    });
    assert.deepEqual(
      second.items.map((item) => item.namespace),
      ["tenant:acme/c"],
    );
    assert.equal(second.more, false);
  });
});

describe("SqliteStore readChanges", () => {
  test("filters by namespace subtree", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme/x", "k", 1);
    await set(store, "tenant:acme/xy", "k", 1);
    await set(store, "tenant:acme/x/y", "k", 1);
    await set(store, "tenant:acme", "k", 1);
    await remove(store, "tenant:acme/x", "k");
    await set(store, "tenant:acme2/x", "k", 1);

    const changes = await store.readChanges({
      tenantId: "acme",
      namespace: "tenant:acme/x",
      afterSeq: 0,
      uptoSeq: 100,
      limit: 100,
    });
    assert.deepEqual(
      changes.map((change) => [change.seq, change.op, change.namespace]),
      [
        [1, "set", "tenant:acme/x"],
        [3, "set", "tenant:acme/x/y"],
        [5, "delete", "tenant:acme/x"],
      ],
    );
    assert.equal(changes[0].valueJson, "1");
    assert.equal(Object.hasOwn(changes[2], "valueJson"), false);
    assert.equal(changes[2].version, 2);
    assert.equal(changes[2].actor, "tester");
    assert.equal(changes[2].tenantId, "acme");
  });

  test("whole tenant from its namespace", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "a", 1);
    await set(store, "tenant:acme/x", "b", 1);
    await set(store, "tenant:acme2", "c", 1);
    const changes = await store.readChanges({
      tenantId: "acme",
      namespace: "tenant:acme",
      afterSeq: 0,
      uptoSeq: 100,
      limit: 100,
    });
    assert.deepEqual(
      changes.map((change) => change.key),
      ["a", "b"],
    );
  });

  test("seq range and limit", async () => {
    const { store } = openStore();
    for (let index = 0; index < 6; index++)
      await set(store, "tenant:acme", `k${index}`, index);
    const range = await store.readChanges({
      tenantId: "acme",
      namespace: "tenant:acme",
      afterSeq: 2,
      uptoSeq: 5,
      limit: 100,
    });
    assert.deepEqual(
      range.map((change) => change.seq),
      [3, 4, 5],
    );

    const limited = await store.readChanges({
      tenantId: "acme",
      namespace: "tenant:acme",
      afterSeq: 2,
      uptoSeq: 6,
      limit: 2,
    });
    assert.deepEqual(
      limited.map((change) => change.seq),
      [3, 4],
    );

    const empty = await store.readChanges({
      tenantId: "acme",
      namespace: "tenant:acme",
      afterSeq: 6,
      uptoSeq: 6,
      limit: 100,
    });
    assert.deepEqual(empty, []);
  });

  test("history matches write results", async () => {
    const { store } = openStore();
    const written = [
      ...(await store.write(
        writeRequest([setOp("tenant:acme", "a", { v: 1 })], { actor: "u1" }),
      )),
      ...(await store.write(
        writeRequest([deleteOp("tenant:acme", "a")], { actor: "u2" }),
      )),
    ];
    const history = await store.readChanges({
      tenantId: "acme",
      namespace: "tenant:acme",
      afterSeq: 0,
      uptoSeq: 10,
      limit: 10,
    });
    assert.deepEqual(history, written);
  });
});

describe("SqliteStore reopen", () => {
  test("keeps data, seq and storeId", async () => {
    const first = openStore();
    await set(first.store, "tenant:acme/x", "k", { kept: true });
    await set(first.store, "tenant:acme/x", "k", { kept: 2 });
    const storeId = first.store.storeId;
    assert.equal(typeof storeId, "string");
    assert.ok(storeId.length > 0);
    await first.store.close();

    const { store } = openStore(first.path);
    assert.equal(store.storeId, storeId);
    const entry = await store.get("tenant:acme/x", "k");
    assert.equal(entry?.valueJson, '{"kept":2}');
    assert.equal(entry?.version, 2);
    assert.equal(await store.latestSeq("acme"), 2);

    const next = await set(store, "tenant:acme/x", "k", 3);
    assert.equal(next.seq, 3);
    assert.equal(next.version, 3);

    const page = await store.namespaces({
      namespace: "tenant:acme",
      afterNamespace: null,
      limit: 10,
    });
    assert.deepEqual(page.items, [{ namespace: "tenant:acme/x", keys: 1 }]);
  });

  test("new files get new storeIds", () => {
    const first = openStore();
    const second = openStore();
    assert.notEqual(first.store.storeId, second.store.storeId);
  });
});

describe("SqliteStore getMany", () => {
  test("entries in request order", async () => {
    const { store } = openStore();
    await set(store, "tenant:acme", "a", 1);
    await set(store, "tenant:acme/x", "b", 2);
    const items = await store.getMany([
      { namespace: "tenant:acme/x", key: "b" },
      { namespace: "tenant:acme", key: "missing" },
      { namespace: "tenant:acme", key: "a" },
    ]);
    assert.equal(items[0]?.valueJson, "2");
    assert.equal(items[1], null);
    assert.equal(items[2]?.valueJson, "1");
  });
});

describe("SqliteStore API keys", () => {
  function keyRecord(
    id: string,
    overrides: Partial<ApiKeyRecord> = {},
  ): ApiKeyRecord {
    return {
      id,
      tenantId: "acme",
      role: "service",
      scope: null,
      name: null,
      createdAt: 1_700_000_000_000,
      revokedAt: null,
      ...overrides,
    };
  }

  test("create, find and list", async () => {
    const { store } = openStore();
    const service = keyRecord("aaaaaaaaaaa1", { name: "backend" });
    const agent = keyRecord("aaaaaaaaaaa2", {
      role: "agent",
      scope: "tenant:acme/user:u1",
      createdAt: 1_700_000_000_001,
    });
    await store.createApiKey({ record: service, hash: "hash-1" });
    await store.createApiKey({ record: agent, hash: "hash-2" });

    assert.deepEqual(await store.findApiKey("hash-1"), service);
    assert.deepEqual(await store.findApiKey("hash-2"), agent);
    assert.equal(await store.findApiKey("hash-3"), null);
    assert.deepEqual(await store.listApiKeys(), [service, agent]);
  });

  test("first key only on empty store", async () => {
    const { store } = openStore();
    const first = keyRecord("ccccccccccc1");
    const second = keyRecord("ccccccccccc2");
    const before = await store.apiKeysVersion();

    assert.equal(
      await store.createFirstApiKey({ record: first, hash: "hash-c1" }),
      true,
    );
    assert.equal(
      await store.createFirstApiKey({ record: second, hash: "hash-c2" }),
      false,
    );
    assert.deepEqual(await store.listApiKeys(), [first]);
    assert.equal(await store.apiKeysVersion(), before + 1);
  });

  test("revoke marks the key", async () => {
    const { store } = openStore();
    await store.createApiKey({
      record: keyRecord("bbbbbbbbbbb1"),
      hash: "hash-b",
    });
    assert.equal(
      await store.revokeApiKey("bbbbbbbbbbb1", 1_800_000_000_000),
      true,
    );
    const found = await store.findApiKey("hash-b");
    assert.equal(found?.revokedAt, 1_800_000_000_000);
    assert.equal(await store.revokeApiKey("unknownid000", 1), false);
  });

  test("revoking twice keeps the first time", async () => {
    const { store } = openStore();
    await store.createApiKey({
      record: keyRecord("ccccccccccc1"),
      hash: "hash-c",
    });
    await store.revokeApiKey("ccccccccccc1", 10);
    assert.equal(await store.revokeApiKey("ccccccccccc1", 20), true);
    assert.equal((await store.findApiKey("hash-c"))?.revokedAt, 10);
  });

  test("apiKeysVersion changes on create and revoke", async () => {
    const { store } = openStore();
    const initial = await store.apiKeysVersion();
    await store.createApiKey({
      record: keyRecord("ddddddddddd1"),
      hash: "hash-d",
    });
    const afterCreate = await store.apiKeysVersion();
    assert.notEqual(afterCreate, initial);

    await store.revokeApiKey("ddddddddddd1", 5);
    const afterRevoke = await store.apiKeysVersion();
    assert.notEqual(afterRevoke, afterCreate);
    assert.notEqual(afterRevoke, initial);

    await set(store, "tenant:acme", "k", 1);
    assert.equal(await store.apiKeysVersion(), afterRevoke);
  });

  test("failed revoke keeps the version", async () => {
    const { store } = openStore();
    const initial = await store.apiKeysVersion();
    await store.revokeApiKey("nosuchkey000", 5);
    assert.equal(await store.apiKeysVersion(), initial);
  });

  test("second connection sees key changes", async () => {
    const { store, path } = openStore();
    const { store: other } = openStore(path);
    const initial = await other.apiKeysVersion();
    await store.createApiKey({
      record: keyRecord("eeeeeeeeeee1"),
      hash: "hash-e",
    });
    assert.notEqual(await other.apiKeysVersion(), initial);
    assert.equal((await other.findApiKey("hash-e"))?.id, "eeeeeeeeeee1");
  });

  test("duplicate id rejected", async () => {
    const { store } = openStore();
    await store.createApiKey({
      record: keyRecord("fffffffffff1"),
      hash: "hash-f1",
    });
    await assert.rejects(
      store.createApiKey({
        record: keyRecord("fffffffffff1"),
        hash: "hash-f2",
      }),
    );
    assert.equal(await store.findApiKey("hash-f2"), null);
  });
});

describe("SqliteStore history pruning", () => {
  let pruned: SqliteStore | undefined;

  afterEach(async () => {
    await pruned?.close();
  });

  test("keeps at least the last changes", async () => {
    fileCount += 1;
    pruned = new SqliteStore({
      path: join(folder, `prune-${fileCount}.db`),
      historyChanges: 3,
      historySeconds: 0,
      pruneIntervalMs: 20,
    });
    for (let index = 0; index < 10; index++)
      await set(pruned, "tenant:acme", `k${index}`, index);

    // Pruning runs on a timer, so wait for it with a generous bound.
    const deadline = Date.now() + 5000;
    let bounds = await pruned.historyBounds("acme");
    while (bounds.oldestSeq === 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      bounds = await pruned.historyBounds("acme");
    }
    assert.equal(bounds.latestSeq, 10);
    assert.ok(bounds.oldestSeq > 1, "history was never pruned");
    assert.ok(
      bounds.oldestSeq <= 8,
      `oldestSeq ${bounds.oldestSeq} drops one of the last 3`,
    );

    const retained = await pruned.readChanges({
      tenantId: "acme",
      namespace: "tenant:acme",
      afterSeq: 0,
      uptoSeq: 10,
      limit: 100,
    });
    assert.equal(retained[0].seq, bounds.oldestSeq);
    assert.deepEqual(
      retained.map((change) => change.seq),
      Array.from(
        { length: 11 - bounds.oldestSeq },
        (_, index) => bounds.oldestSeq + index,
      ),
    );
  });
});
