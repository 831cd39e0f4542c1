import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  assertErrorResponse,
  assertMembers,
  exchangeRaw,
  sortByUtf8,
} from "../support/protocol-cases.js";
import { TestClient, type Message } from "../support/rpc-client.js";
import { ServerFixture } from "../support/server-fixture.js";
import { createKey, type CreatedKey } from "../support/server-process.js";
import { forEachStore } from "../support/stores.js";

const maxValueBytes = 64 * 1024;

forEachStore("methods", (kind) => {
  const fixture = new ServerFixture(kind, {
    keys: {
      acme: { tenant: "acme" },
      agent: { tenant: "acme", role: "agent" },
      acme2: { tenant: "acme2" },
      other: { tenant: "other" },
      seqa: { tenant: "seqa" },
      seqb: { tenant: "seqb" },
    },
  });
  let acme: TestClient;

  before(async () => {
    await fixture.start();
    acme = await fixture.connect("acme");
  });

  after(async () => {
    await acme?.close();
    await fixture.stop();
  });

  /** Opens a connection, runs `body` with it and closes it. */
  async function withClient<T>(
    key: CreatedKey,
    body: (client: TestClient) => Promise<T>,
  ): Promise<T> {
    const client = await TestClient.connect(fixture.server.url, {
      apiKey: key.key,
    });
    try {
      return await body(client);
    } finally {
      await client.close();
    }
  }

  /** Reads every page of kv/list and returns the pages. */
  async function listAllPages(
    client: TestClient,
    params: Record<string, unknown>,
  ): Promise<Message[]> {
    const pages: Message[] = [];
    let cursor: string | null = null;
    do {
      const page = await client.call("kv/list", { ...params, cursor });
      pages.push(page);
      cursor = page.nextCursor;
      assert.ok(pages.length <= 1000, "paging does not end");
    } while (cursor !== null);
    return pages;
  }

  /** Reads every page of kv/namespaces and returns all items. */
  async function namespacesAll(
    client: TestClient,
    params: Record<string, unknown>,
  ): Promise<Message[]> {
    const items: Message[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await client.call("kv/namespaces", { ...params, cursor });
      items.push(...page.items);
      cursor = page.nextCursor;
      pages += 1;
      assert.ok(pages <= 1000, "paging does not end");
    } while (cursor !== null);
    return items;
  }

  describe("result shapes", () => {
    const ns = "tenant:acme/shapes";

    test("kv/set result members", async () => {
      const startedAt = Date.now();
      const set = await acme.call("kv/set", {
        namespace: ns,
        key: "set",
        value: { a: 1 },
      });
      const endedAt = Date.now();

      assertMembers(set, [
        "namespace",
        "key",
        "version",
        "updatedBy",
        "updatedAt",
        "seq",
      ]);
      assert.equal(set.namespace, ns);
      assert.equal(set.key, "set");
      assert.equal(set.version, 1);
      assert.equal(set.updatedBy, fixture.keys.acme.id);
      assert.equal(Number.isInteger(set.updatedAt), true);
      assert.ok(
        set.updatedAt >= startedAt,
        "updatedAt is earlier than the request",
      );
      assert.ok(
        set.updatedAt <= endedAt,
        "updatedAt is later than the response",
      );
      assert.equal(Number.isInteger(set.seq), true);
      assert.ok(set.seq >= 1);
    });

    test("kv/get result members", async () => {
      const set = await acme.call("kv/set", {
        namespace: ns,
        key: "get",
        value: [1, "two", { three: 3 }],
      });
      const got = await acme.call("kv/get", { namespace: ns, key: "get" });

      assertMembers(got, [
        "namespace",
        "key",
        "value",
        "version",
        "updatedBy",
        "updatedAt",
      ]);
      assert.equal(got.namespace, ns);
      assert.equal(got.key, "get");
      assert.deepEqual(got.value, [1, "two", { three: 3 }]);
      assert.equal(got.version, set.version);
      assert.equal(got.updatedBy, fixture.keys.acme.id);
      assert.equal(got.updatedAt, set.updatedAt);
    });

    test("kv/list result members", async () => {
      const listNs = `${ns}/list`;
      const set = await acme.call("kv/set", {
        namespace: listNs,
        key: "only",
        value: "v",
      });
      const list = await acme.call("kv/list", { namespace: listNs });

      assertMembers(list, ["namespace", "items", "nextCursor"]);
      assert.equal(list.namespace, listNs);
      assert.equal(list.nextCursor, null);
      assert.equal(list.items.length, 1);
      assertMembers(list.items[0], [
        "key",
        "value",
        "version",
        "updatedBy",
        "updatedAt",
      ]);
      assert.deepEqual(list.items[0], {
        key: "only",
        value: "v",
        version: 1,
        updatedBy: fixture.keys.acme.id,
        updatedAt: set.updatedAt,
      });
    });

    test("kv/namespaces result members", async () => {
      const area = `${ns}/namespaces`;
      await acme.call("kv/set", { namespace: area, key: "k", value: 1 });
      const result = await acme.call("kv/namespaces", { namespace: area });

      assertMembers(result, ["namespace", "items", "nextCursor"]);
      assert.equal(result.namespace, area);
      assert.equal(result.nextCursor, null);
      assert.deepEqual(result.items, [{ namespace: area, keys: 1 }]);
    });

    test("kv/mget result members", async () => {
      await acme.call("kv/set", { namespace: ns, key: "mget", value: true });
      const got = await acme.call("kv/get", { namespace: ns, key: "mget" });
      const result = await acme.call("kv/mget", {
        keys: [
          { namespace: ns, key: "mget" },
          { namespace: ns, key: "mget-missing" },
        ],
      });

      assertMembers(result, ["items"]);
      assert.equal(result.items.length, 2);
      assert.deepEqual(result.items[0], got);
      assert.equal(result.items[1], null);
    });

    test("kv/delete result members", async () => {
      const set = await acme.call("kv/set", {
        namespace: ns,
        key: "delete",
        value: 1,
      });
      const deleted = await acme.call("kv/delete", {
        namespace: ns,
        key: "delete",
      });

      assertMembers(deleted, ["namespace", "key", "version", "seq"]);
      assert.equal(deleted.namespace, ns);
      assert.equal(deleted.key, "delete");
      assert.equal(deleted.version, 2);
      assert.equal(deleted.seq, set.seq + 1);
    });

    test("kv/batch result members", async () => {
      const result = await acme.call("kv/batch", {
        operations: [
          { op: "set", namespace: ns, key: "batch-a", value: 1 },
          { op: "set", namespace: `${ns}/b`, key: "batch-b", value: 2 },
          { op: "delete", namespace: ns, key: "batch-a" },
        ],
      });

      assertMembers(result, ["results"]);
      assert.equal(result.results.length, 3);
      for (const entry of result.results) {
        assertMembers(entry, ["namespace", "key", "version", "seq"]);
      }
      const [first, second, third] = result.results;
      assert.deepEqual(
        { namespace: first.namespace, key: first.key, version: first.version },
        { namespace: ns, key: "batch-a", version: 1 },
      );
      assert.deepEqual(
        {
          namespace: second.namespace,
          key: second.key,
          version: second.version,
        },
        { namespace: `${ns}/b`, key: "batch-b", version: 1 },
      );
      assert.deepEqual(
        { namespace: third.namespace, key: third.key, version: third.version },
        { namespace: ns, key: "batch-a", version: 2 },
      );
      assert.equal(second.seq, first.seq + 1);
      assert.equal(third.seq, first.seq + 2);
    });

    test("watch/subscribe result members", async () => {
      const last = await acme.call("kv/set", {
        namespace: ns,
        key: "watch",
        value: 1,
      });
      await withClient(fixture.keys.acme, async (watcher) => {
        const result = await watcher.call("watch/subscribe", { namespace: ns });
        assertMembers(result, ["namespace", "seq", "storeId"]);
        assert.equal(result.namespace, ns);
        assert.equal(result.seq, last.seq);
        assert.equal(typeof result.storeId, "string");
        assert.ok(result.storeId.length > 0, "storeId is empty");

        const again = await watcher.call("watch/subscribe", { namespace: ns });
        assertMembers(again, ["namespace", "seq", "storeId"]);
        assert.equal(again.seq, last.seq);
        assert.equal(again.storeId, result.storeId);
      });
    });

    test("watch/unsubscribe result members", async () => {
      await withClient(fixture.keys.acme, async (watcher) => {
        await watcher.call("watch/subscribe", { namespace: ns });
        await watcher.call("watch/subscribe", { namespace: `${ns}/child` });

        const removed = await watcher.call("watch/unsubscribe", {
          namespace: ns,
        });
        assertMembers(removed, ["namespace", "unsubscribed"]);
        assert.deepEqual(removed, { namespace: ns, unsubscribed: true });

        const again = await watcher.call("watch/unsubscribe", {
          namespace: ns,
        });
        assert.deepEqual(again, { namespace: ns, unsubscribed: false });

        const child = await watcher.call("watch/unsubscribe", {
          namespace: `${ns}/child`,
        });
        assert.deepEqual(child, {
          namespace: `${ns}/child`,
          unsubscribed: true,
        });
      });
    });
  });

  describe("error data", () => {
    const ns = "tenant:acme/errors";

    test("CAS conflict data", async () => {
      await acme.call("kv/set", { namespace: ns, key: "cas", value: 1 });
      const error = await acme.callError("kv/set", {
        namespace: ns,
        key: "cas",
        value: 2,
        cas: 5,
      });
      assert.equal(error.code, -32002);
      assert.deepEqual(error.data, {
        namespace: ns,
        key: "cas",
        expected: 5,
        actual: 1,
      });
    });

    test("not found data", async () => {
      const getError = await acme.callError("kv/get", {
        namespace: ns,
        key: "missing",
      });
      assert.equal(getError.code, -32004);
      assert.deepEqual(getError.data, { namespace: ns, key: "missing" });

      const deleteError = await acme.callError("kv/delete", {
        namespace: ns,
        key: "missing",
      });
      assert.equal(deleteError.code, -32004);
      assert.deepEqual(deleteError.data, { namespace: ns, key: "missing" });
    });

    test("value too large data", async () => {
      const value = "x".repeat(maxValueBytes - 1);
      const error = await acme.callError("kv/set", {
        namespace: ns,
        key: "large",
        value,
      });
      assert.equal(error.code, -32602);
      assert.deepEqual(error.data, {
        limit: maxValueBytes,
        size: maxValueBytes + 1,
      });
    });

    test("fromSeq above latest data", async () => {
      const last = await acme.call("kv/set", {
        namespace: ns,
        key: "seq",
        value: 1,
      });
      await withClient(fixture.keys.acme, async (watcher) => {
        const probe = await watcher.call("watch/subscribe", {
          namespace: `${ns}/probe`,
        });
        const error = await watcher.callError("watch/subscribe", {
          namespace: ns,
          fromSeq: last.seq + 1,
          storeId: probe.storeId,
        });
        assert.equal(error.code, -32602);
        assert.deepEqual(error.data, { latestSeq: last.seq });

        const atLatest = await watcher.call("watch/subscribe", {
          namespace: ns,
          fromSeq: last.seq,
          storeId: probe.storeId,
        });
        assert.equal(atLatest.seq, last.seq);
      });
    });

    test("65th subscription rate limited", async () => {
      await withClient(fixture.keys.acme, async (watcher) => {
        for (let i = 0; i < 64; i += 1) {
          await watcher.call("watch/subscribe", {
            namespace: `${ns}/sub/${i}`,
          });
        }
        const error = await watcher.callError("watch/subscribe", {
          namespace: `${ns}/sub/64`,
        });
        assert.equal(error.code, -32007);
        assert.deepEqual(error.data, { limit: 64 });

        const foreign = await watcher.callError("watch/subscribe", {
          namespace: "tenant:other/sub",
        });
        assert.equal(foreign.code, -32003);

        const invalid = await watcher.callError("watch/subscribe", {
          namespace: `${ns}//sub`,
        });
        assert.equal(invalid.code, -32602);

        await watcher.call("watch/unsubscribe", { namespace: `${ns}/sub/0` });
        const replaced = await watcher.call("watch/subscribe", {
          namespace: `${ns}/sub/64`,
        });
        assert.equal(replaced.namespace, `${ns}/sub/64`);
      });
    });

    test("whole-call errors carry no index", async () => {
      const emptyBatch = await acme.callError("kv/batch", { operations: [] });
      assert.equal(emptyBatch.code, -32602);
      assert.equal(emptyBatch.data?.index, undefined);

      const badActor = await acme.callError("kv/batch", {
        operations: [{ op: "set", namespace: ns, key: "a", value: 1 }],
        actor: "",
      });
      assert.equal(badActor.code, -32602);
      assert.equal(badActor.data?.index, undefined);

      const emptyMget = await acme.callError("kv/mget", { keys: [] });
      assert.equal(emptyMget.code, -32602);
      assert.equal(emptyMget.data?.index, undefined);

      const notArray = await acme.callError("kv/mget", { keys: {} });
      assert.equal(notArray.code, -32602);
      assert.equal(notArray.data?.index, undefined);
    });
  });

  describe("check order", () => {
    const ns = "tenant:acme/order";

    test("agent write gets read-only first", async () => {
      await withClient(fixture.keys.agent, async (agent) => {
        const valid = await agent.callError("kv/set", {
          namespace: ns,
          key: "k",
          value: 1,
        });
        assert.equal(valid.code, -32005);

        const invalidParams = await agent.callError("kv/set", {
          namespace: ns,
          key: "",
          value: 1,
          Cas: 1,
        });
        assert.equal(invalidParams.code, -32005);

        const arrayParams = await agent.callError("kv/set", [ns, "k", 1]);
        assert.equal(arrayParams.code, -32005);

        const foreign = await agent.callError("kv/set", {
          namespace: "tenant:other/x",
          key: "k",
          value: 1,
        });
        assert.equal(foreign.code, -32005);

        const emptyBatch = await agent.callError("kv/batch", {
          operations: [],
        });
        assert.equal(emptyBatch.code, -32005);

        const deleteError = await agent.callError("kv/delete", {
          namespace: ns,
          key: "missing",
        });
        assert.equal(deleteError.code, -32005);
      });
    });

    test("agent reads and unknown methods", async () => {
      await acme.call("kv/set", { namespace: ns, key: "agent-read", value: 7 });
      await withClient(fixture.keys.agent, async (agent) => {
        const unknown = await agent.callError("kv/sett", {
          namespace: ns,
          key: "k",
          value: 1,
        });
        assert.equal(unknown.code, -32601);

        const got = await agent.call("kv/get", {
          namespace: ns,
          key: "agent-read",
        });
        assert.equal(got.value, 7);

        const list = await agent.call("kv/list", { namespace: ns });
        assert.ok(
          list.items.some((item: Message) => item.key === "agent-read"),
        );
      });
    });

    test("invalid params before foreign namespace", async () => {
      const typo = await acme.callError("kv/set", {
        namespace: "tenant:other/x",
        key: "k",
        value: 1,
        Cas: 1,
      });
      assert.equal(typo.code, -32602);

      const missingKey = await acme.callError("kv/get", {
        namespace: "tenant:other/x",
      });
      assert.equal(missingKey.code, -32602);

      const badKey = await acme.callError("kv/delete", {
        namespace: "tenant:other/x",
        key: "bad\u0001",
      });
      assert.equal(badKey.code, -32602);

      const valid = await acme.callError("kv/get", {
        namespace: "tenant:other/x",
        key: "k",
      });
      assert.equal(valid.code, -32003);
    });

    test("foreign tenant errors reveal nothing", async () => {
      await withClient(fixture.keys.other, (other) =>
        other.call("kv/set", {
          namespace: "tenant:other/x",
          key: "k",
          value: 1,
        }),
      );
      const existing = await acme.callError("kv/get", {
        namespace: "tenant:other/x",
        key: "k",
      });
      const absent = await acme.callError("kv/get", {
        namespace: "tenant:nobody/x",
        key: "k",
      });
      assert.equal(existing.code, -32003);
      assert.equal(absent.code, -32003);
      // Only the namespace named in the request may differ.
      assert.equal(
        JSON.stringify(existing).replaceAll("tenant:other/x", "NS"),
        JSON.stringify(absent).replaceAll("tenant:nobody/x", "NS"),
      );
    });

    test("fromSeq on foreign namespace unauthorized", async () => {
      await withClient(fixture.keys.acme, async (watcher) => {
        const error = await watcher.callError("watch/subscribe", {
          namespace: "tenant:other/x",
          fromSeq: 1_000_000,
        });
        assert.equal(error.code, -32003);
        assert.equal(error.data?.latestSeq, undefined);
      });
    });

    test("CAS mismatch before not found", async () => {
      const withCas = await acme.callError("kv/delete", {
        namespace: ns,
        key: "never",
        cas: 5,
      });
      assert.equal(withCas.code, -32002);
      assert.deepEqual(withCas.data, {
        namespace: ns,
        key: "never",
        expected: 5,
        actual: 0,
      });

      const withZero = await acme.callError("kv/delete", {
        namespace: ns,
        key: "never",
        cas: 0,
      });
      assert.equal(withZero.code, -32004);
      assert.deepEqual(withZero.data, { namespace: ns, key: "never" });
    });

    test("invalid params before store errors", async () => {
      const error = await acme.callError("kv/delete", {
        namespace: ns,
        key: "never",
        Cas: 5,
      });
      assert.equal(error.code, -32602);
    });
  });

  describe("versions and CAS", () => {
    const ns = "tenant:acme/versions";

    test("version lifecycle continues after delete", async () => {
      const created = await acme.call("kv/set", {
        namespace: ns,
        key: "life",
        value: 1,
      });
      assert.equal(created.version, 1);

      const updated = await acme.call("kv/set", {
        namespace: ns,
        key: "life",
        value: 2,
      });
      assert.equal(updated.version, 2);

      const deleted = await acme.call("kv/delete", {
        namespace: ns,
        key: "life",
      });
      assert.equal(deleted.version, 3);

      const gone = await acme.callError("kv/get", {
        namespace: ns,
        key: "life",
      });
      assert.equal(gone.code, -32004);
      const list = await acme.call("kv/list", {
        namespace: ns,
        prefix: "life",
      });
      assert.deepEqual(list.items, []);

      const recreated = await acme.call("kv/set", {
        namespace: ns,
        key: "life",
        value: 4,
      });
      assert.equal(recreated.version, 4);
      const got = await acme.call("kv/get", { namespace: ns, key: "life" });
      assert.equal(got.version, 4);
      assert.equal(got.value, 4);
    });

    test("cas 0 creates only if absent", async () => {
      const created = await acme.call("kv/set", {
        namespace: ns,
        key: "absent",
        value: "first",
        cas: 0,
      });
      assert.equal(created.version, 1);

      const error = await acme.callError("kv/set", {
        namespace: ns,
        key: "absent",
        value: "second",
        cas: 0,
      });
      assert.equal(error.code, -32002);
      assert.deepEqual(error.data, {
        namespace: ns,
        key: "absent",
        expected: 0,
        actual: 1,
      });

      const got = await acme.call("kv/get", { namespace: ns, key: "absent" });
      assert.equal(got.value, "first");
    });

    test("matching cas writes", async () => {
      await acme.call("kv/set", { namespace: ns, key: "match", value: 1 });
      const updated = await acme.call("kv/set", {
        namespace: ns,
        key: "match",
        value: 2,
        cas: 1,
      });
      assert.equal(updated.version, 2);

      const stale = await acme.callError("kv/delete", {
        namespace: ns,
        key: "match",
        cas: 1,
      });
      assert.equal(stale.code, -32002);
      assert.deepEqual(stale.data, {
        namespace: ns,
        key: "match",
        expected: 1,
        actual: 2,
      });

      const deleted = await acme.call("kv/delete", {
        namespace: ns,
        key: "match",
        cas: 2,
      });
      assert.equal(deleted.version, 3);
    });

    test("cas on deleted key reports 0", async () => {
      await acme.call("kv/set", { namespace: ns, key: "deleted", value: 1 });
      await acme.call("kv/delete", { namespace: ns, key: "deleted" });

      const error = await acme.callError("kv/set", {
        namespace: ns,
        key: "deleted",
        value: 2,
        cas: 2,
      });
      assert.equal(error.code, -32002);
      assert.deepEqual(error.data, {
        namespace: ns,
        key: "deleted",
        expected: 2,
        actual: 0,
      });

      const recreated = await acme.call("kv/set", {
        namespace: ns,
        key: "deleted",
        value: 3,
        cas: 0,
      });
      assert.equal(recreated.version, 3);
    });

    test("invalid cas values rejected", async () => {
      for (const cas of [-1, 1.5, "1", true, {}]) {
        const error = await acme.callError("kv/set", {
          namespace: ns,
          key: "bad-cas",
          value: 1,
          cas,
        });
        assert.equal(error.code, -32602, `cas ${JSON.stringify(cas)}`);
      }
    });
  });

  describe("kv/batch", () => {
    const ns = "tenant:acme/batch";

    test("failing operation writes nothing", async () => {
      const lastWrite = await acme.call("kv/set", {
        namespace: ns,
        key: "before",
        value: 0,
      });
      const error = await acme.callError("kv/batch", {
        operations: [
          { op: "set", namespace: ns, key: "atomic-a", value: 1 },
          { op: "set", namespace: ns, key: "atomic-b", value: 2 },
          { op: "set", namespace: ns, key: "atomic-c", value: 3, cas: 7 },
        ],
      });
      assert.equal(error.code, -32002);
      assert.deepEqual(error.data, {
        namespace: ns,
        key: "atomic-c",
        expected: 7,
        actual: 0,
        index: 2,
      });

      const items = await acme.call("kv/mget", {
        keys: [
          { namespace: ns, key: "atomic-a" },
          { namespace: ns, key: "atomic-b" },
          { namespace: ns, key: "atomic-c" },
        ],
      });
      assert.deepEqual(items.items, [null, null, null]);

      const next = await acme.call("kv/set", {
        namespace: ns,
        key: "after",
        value: 0,
      });
      assert.equal(next.seq, lastWrite.seq + 1);
    });

    test("missing delete gives indexed not found", async () => {
      const error = await acme.callError("kv/batch", {
        operations: [
          { op: "set", namespace: ns, key: "nf-a", value: 1 },
          { op: "delete", namespace: ns, key: "nf-missing" },
        ],
      });
      assert.equal(error.code, -32004);
      assert.deepEqual(error.data, {
        namespace: ns,
        key: "nf-missing",
        index: 1,
      });

      const missing = await acme.callError("kv/get", {
        namespace: ns,
        key: "nf-a",
      });
      assert.equal(missing.code, -32004);
    });

    test("same key twice in batch", async () => {
      const result = await acme.call("kv/batch", {
        operations: [
          { op: "set", namespace: ns, key: "twice", value: "one" },
          { op: "set", namespace: ns, key: "twice", value: "two", cas: 1 },
        ],
      });
      assert.equal(result.results[0].version, 1);
      assert.equal(result.results[1].version, 2);
      assert.equal(result.results[1].seq, result.results[0].seq + 1);

      const got = await acme.call("kv/get", { namespace: ns, key: "twice" });
      assert.equal(got.value, "two");
      assert.equal(got.version, 2);
    });

    test("set then delete in batch", async () => {
      const result = await acme.call("kv/batch", {
        operations: [
          { op: "set", namespace: ns, key: "brief", value: 1 },
          { op: "delete", namespace: ns, key: "brief", cas: 1 },
        ],
      });
      assert.deepEqual(
        result.results.map((r: Message) => r.version),
        [1, 2],
      );
      const gone = await acme.callError("kv/get", {
        namespace: ns,
        key: "brief",
      });
      assert.equal(gone.code, -32004);
    });

    test("operation errors carry index", async () => {
      const invalidKey = await acme.callError("kv/batch", {
        operations: [
          { op: "set", namespace: ns, key: "ok", value: 1 },
          { op: "set", namespace: ns, key: "", value: 1 },
        ],
      });
      assert.equal(invalidKey.code, -32602);
      assert.equal(invalidKey.data?.index, 1);

      const unknownOp = await acme.callError("kv/batch", {
        operations: [{ op: "put", namespace: ns, key: "ok", value: 1 }],
      });
      assert.equal(unknownOp.code, -32602);
      assert.equal(unknownOp.data?.index, 0);

      const missingValue = await acme.callError("kv/batch", {
        operations: [
          { op: "delete", namespace: ns, key: "ok" },
          { op: "set", namespace: ns, key: "ok" },
        ],
      });
      assert.equal(missingValue.code, -32602);
      assert.equal(missingValue.data?.index, 1);

      const foreign = await acme.callError("kv/batch", {
        operations: [
          { op: "set", namespace: ns, key: "ok", value: 1 },
          { op: "set", namespace: ns, key: "ok2", value: 1 },
          { op: "set", namespace: "tenant:other/x", key: "k", value: 1 },
        ],
      });
      assert.equal(foreign.code, -32003);
      assert.equal(foreign.data?.index, 2);

      const nothing = await acme.callError("kv/get", {
        namespace: ns,
        key: "ok",
      });
      assert.equal(nothing.code, -32004);
    });

    test("batch of 500 accepted, 501 rejected", async () => {
      const operations = Array.from({ length: 501 }, (_, i) => ({
        op: "set",
        namespace: `${ns}/many`,
        key: `k${i}`,
        value: i,
      }));
      const tooMany = await acme.callError("kv/batch", { operations });
      assert.equal(tooMany.code, -32602);
      assert.equal(tooMany.data?.index, undefined);

      const result = await acme.call("kv/batch", {
        operations: operations.slice(0, 500),
      });
      assert.equal(result.results.length, 500);
      assert.equal(result.results[499].seq, result.results[0].seq + 499);
    });

    test("batch actor recorded per key", async () => {
      await acme.call("kv/batch", {
        actor: "auth0|batch",
        operations: [
          { op: "set", namespace: ns, key: "actor-a", value: 1 },
          { op: "set", namespace: `${ns}/sub`, key: "actor-b", value: 2 },
        ],
      });
      const items = await acme.call("kv/mget", {
        keys: [
          { namespace: ns, key: "actor-a" },
          { namespace: `${ns}/sub`, key: "actor-b" },
        ],
      });
      assert.equal(items.items[0].updatedBy, "auth0|batch");
      assert.equal(items.items[1].updatedBy, "auth0|batch");
    });
  });

  describe("sequence numbers", () => {
    test("seq per tenant without gaps", async () => {
      await withClient(fixture.keys.seqa, async (seqa) => {
        await withClient(fixture.keys.seqb, async (seqb) => {
          const ns = "tenant:seqa/s";
          const first = await seqa.call("kv/set", {
            namespace: ns,
            key: "a",
            value: 1,
          });
          assert.equal(first.seq, 1);

          const second = await seqa.call("kv/set", {
            namespace: `${ns}/deep`,
            key: "b",
            value: 2,
          });
          assert.equal(second.seq, 2);

          const deleted = await seqa.call("kv/delete", {
            namespace: ns,
            key: "a",
          });
          assert.equal(deleted.seq, 3);

          const batch = await seqa.call("kv/batch", {
            operations: [
              { op: "set", namespace: ns, key: "c", value: 3 },
              { op: "set", namespace: ns, key: "d", value: 4 },
              { op: "delete", namespace: `${ns}/deep`, key: "b" },
            ],
          });
          assert.deepEqual(
            batch.results.map((r: Message) => r.seq),
            [4, 5, 6],
          );

          const conflict = await seqa.callError("kv/set", {
            namespace: ns,
            key: "c",
            value: 0,
            cas: 9,
          });
          assert.equal(conflict.code, -32002);
          const notFound = await seqa.callError("kv/delete", {
            namespace: ns,
            key: "nothing",
          });
          assert.equal(notFound.code, -32004);

          const otherTenant = await seqb.call("kv/set", {
            namespace: "tenant:seqb/s",
            key: "a",
            value: 1,
          });
          assert.equal(otherTenant.seq, 1);

          const next = await seqa.call("kv/set", {
            namespace: ns,
            key: "e",
            value: 5,
          });
          assert.equal(next.seq, 7);

          const subscribed = await seqa.call("watch/subscribe", {
            namespace: "tenant:seqa",
          });
          assert.equal(subscribed.seq, 7);
          const subscribedB = await seqb.call("watch/subscribe", {
            namespace: "tenant:seqb",
          });
          assert.equal(subscribedB.seq, 1);
        });
      });
    });
  });

  describe("kv/list", () => {
    const ns = "tenant:acme/list";

    test("lists only that namespace", async () => {
      const area = `${ns}/exact`;
      await acme.call("kv/set", { namespace: area, key: "here", value: 1 });
      await acme.call("kv/set", {
        namespace: `${area}/below`,
        key: "below",
        value: 2,
      });
      await acme.call("kv/set", {
        namespace: `${area}x`,
        key: "sibling",
        value: 3,
      });

      const list = await acme.call("kv/list", { namespace: area });
      assert.deepEqual(
        list.items.map((item: Message) => item.key),
        ["here"],
      );

      await acme.call("kv/set", {
        namespace: `${ns}/l_ke`,
        key: "a",
        value: 1,
      });
      await acme.call("kv/set", {
        namespace: `${ns}/like`,
        key: "b",
        value: 1,
      });
      const literal = await acme.call("kv/list", { namespace: `${ns}/l_ke` });
      assert.deepEqual(
        literal.items.map((item: Message) => item.key),
        ["a"],
      );
    });

    test("prefix characters match literally", async () => {
      const area = `${ns}/prefix`;
      const keys = [
        "a%b",
        "axb",
        "a_b",
        "ayb",
        "a*b",
        "azb",
        "a\\b",
        "a[b",
        "a?b",
        "A%b",
        "b",
      ];
      for (const key of keys) {
        await acme.call("kv/set", { namespace: area, key, value: key });
      }

      const cases: Array<[string, string[]]> = [
        ["a%", ["a%b"]],
        ["a_", ["a_b"]],
        ["a*", ["a*b"]],
        ["a\\", ["a\\b"]],
        ["a[", ["a[b"]],
        ["a?", ["a?b"]],
        ["%", []],
        ["_", []],
        ["A", ["A%b"]],
        ["a", sortByUtf8(keys.filter((key) => key.startsWith("a")))],
        ["", sortByUtf8(keys)],
      ];
      for (const [prefix, expected] of cases) {
        const list = await acme.call("kv/list", { namespace: area, prefix });
        assert.deepEqual(
          list.items.map((item: Message) => item.key),
          expected,
          `prefix ${JSON.stringify(prefix)}`,
        );
      }
    });

    test("invalid prefixes rejected", async () => {
      for (const prefix of ["a\u0000", "\n", "x".repeat(1025), 5]) {
        const error = await acme.callError("kv/list", {
          namespace: ns,
          prefix,
        });
        assert.equal(error.code, -32602, `prefix ${JSON.stringify(prefix)}`);
      }
    });

    test("keys sorted by UTF-8 bytes", async () => {
      const area = `${ns}/order`;
      const keys = [
        "a",
        "B",
        "é",
        "😀",
        "\uFFFD",
        "\uE000",
        "z",
        "aa",
        "a b",
        "~",
        "Z",
        "𝔸",
      ];
      for (const key of keys) {
        await acme.call("kv/set", { namespace: area, key, value: null });
      }
      const list = await acme.call("kv/list", { namespace: area });
      const listed = list.items.map((item: Message) => item.key);
      assert.deepEqual(listed, sortByUtf8(keys));
      // Code-unit order (the default JavaScript sort) differs for these keys.
      assert.notDeepEqual(listed, [...keys].sort());

      const paged = await listAllPages(acme, { namespace: area, limit: 1 });
      assert.deepEqual(
        paged.flatMap((page) => page.items.map((item: Message) => item.key)),
        sortByUtf8(keys),
      );
    });

    test("prefix matches multi-byte keys", async () => {
      const area = `${ns}/prefix-bytes`;
      const keys = ["p", "p\uFFFD", "p😀", "p\uFFFF", "pé", "q", "o😀"];
      for (const key of keys) {
        await acme.call("kv/set", { namespace: area, key, value: 1 });
      }

      const cases: Array<[string, string[]]> = [
        ["p", sortByUtf8(keys.filter((key) => key.startsWith("p")))],
        ["p😀", ["p😀"]],
        ["p\uFFFF", ["p\uFFFF"]],
        ["pé", ["pé"]],
        ["😀", []],
      ];
      for (const [prefix, expected] of cases) {
        const list = await acme.call("kv/list", { namespace: area, prefix });
        assert.deepEqual(
          list.items.map((item: Message) => item.key),
          expected,
          `prefix ${JSON.stringify(prefix)}`,
        );
      }
    });

    test("paging visits every key once", async () => {
      const area = `${ns}/paging`;
      const keys = Array.from(
        { length: 25 },
        (_, i) => `key-${String(i).padStart(2, "0")}`,
      );
      for (const key of keys) {
        await acme.call("kv/set", { namespace: area, key, value: key });
      }

      const pages = await listAllPages(acme, { namespace: area, limit: 10 });
      assert.deepEqual(
        pages.map((page) => page.items.length),
        [10, 10, 5],
      );
      assert.equal(typeof pages[0].nextCursor, "string");
      assert.equal(pages[2].nextCursor, null);
      assert.deepEqual(
        pages.flatMap((page) => page.items.map((item: Message) => item.key)),
        keys,
      );
    });

    test("cursor is a position, not snapshot", async () => {
      const area = `${ns}/position`;
      for (const key of ["b", "d", "f", "h"]) {
        await acme.call("kv/set", { namespace: area, key, value: 1 });
      }
      const first = await acme.call("kv/list", { namespace: area, limit: 2 });
      assert.deepEqual(
        first.items.map((item: Message) => item.key),
        ["b", "d"],
      );

      await acme.call("kv/set", { namespace: area, key: "a", value: 1 });
      await acme.call("kv/set", { namespace: area, key: "e", value: 1 });
      await acme.call("kv/set", { namespace: area, key: "d", value: 2 });

      const continuation: string[] = [];
      let cursor: string | null = first.nextCursor;
      while (cursor !== null) {
        const page = await acme.call("kv/list", {
          namespace: area,
          limit: 2,
          cursor,
        });
        continuation.push(...page.items.map((item: Message) => item.key));
        cursor = page.nextCursor;
      }
      assert.deepEqual(continuation, ["e", "f", "h"]);
    });

    test("cursor from elsewhere rejected", async () => {
      const area = `${ns}/cursors`;
      for (const key of ["p1", "p2", "p3", "q1"]) {
        await acme.call("kv/set", { namespace: area, key, value: 1 });
        await acme.call("kv/set", { namespace: `${area}/two`, key, value: 1 });
      }
      const page = await acme.call("kv/list", {
        namespace: area,
        prefix: "p",
        limit: 1,
      });
      assert.equal(typeof page.nextCursor, "string");

      const otherNamespace = await acme.callError("kv/list", {
        namespace: `${area}/two`,
        prefix: "p",
        limit: 1,
        cursor: page.nextCursor,
      });
      assert.equal(otherNamespace.code, -32602);

      const otherPrefix = await acme.callError("kv/list", {
        namespace: area,
        prefix: "",
        limit: 1,
        cursor: page.nextCursor,
      });
      assert.equal(otherPrefix.code, -32602);

      const empty = await acme.callError("kv/list", {
        namespace: area,
        prefix: "p",
        cursor: "",
      });
      assert.equal(empty.code, -32602);

      const restart = await acme.call("kv/list", {
        namespace: area,
        prefix: "p",
        limit: 1,
        cursor: null,
      });
      assert.deepEqual(
        restart.items.map((item: Message) => item.key),
        ["p1"],
      );

      const same = await acme.call("kv/list", {
        namespace: area,
        prefix: "p",
        limit: 5,
        cursor: page.nextCursor,
      });
      assert.deepEqual(
        same.items.map((item: Message) => item.key),
        ["p2", "p3"],
      );
    });

    test("limit bounds", async () => {
      for (const limit of [0, -1, 1001, 1.5, "10"]) {
        const error = await acme.callError("kv/list", { namespace: ns, limit });
        assert.equal(error.code, -32602, `limit ${JSON.stringify(limit)}`);
      }
      const max = await acme.call("kv/list", { namespace: ns, limit: 1000 });
      assert.ok(Array.isArray(max.items));
    });

    test("empty namespace gives empty items", async () => {
      const list = await acme.call("kv/list", {
        namespace: `${ns}/nothing/here`,
      });
      assert.deepEqual(list, {
        namespace: `${ns}/nothing/here`,
        items: [],
        nextCursor: null,
      });
    });

    test("page ends early at 4 MiB", async () => {
      const area = `${ns}/large`;
      const count = 80;
      const value = "v".repeat(60_000);
      const writes = [];
      for (let i = 0; i < count; i += 1) {
        const key = `big-${String(i).padStart(2, "0")}`;
        writes.push(acme.request("kv/set", { namespace: area, key, value }));
      }
      for (const reply of await Promise.all(writes)) {
        assert.equal(reply.error, undefined, JSON.stringify(reply.error));
      }

      const pages = await listAllPages(acme, { namespace: area });
      assert.ok(pages.length >= 2, "expected more than one page");
      assert.ok(pages[0].items.length < count);
      assert.ok(
        Buffer.byteLength(JSON.stringify(pages[0].items)) <=
          4 * 1024 * 1024 + 64 * 1024,
        "first page is larger than 4 MiB plus one item",
      );
      const keys = pages.flatMap((page) =>
        page.items.map((item: Message) => item.key),
      );
      assert.equal(keys.length, count);
      assert.equal(new Set(keys).size, count);
    });
  });

  describe("kv/namespaces", () => {
    const root = "tenant:acme/tree";

    test("counts below in byte order", async () => {
      const layout: Record<string, number> = {
        [root]: 2,
        [`${root}/B`]: 1,
        [`${root}/a`]: 1,
        [`${root}/a-b`]: 1,
        [`${root}/a/c`]: 3,
        [`${root}/é`]: 1,
        [`${root}/😀`]: 1,
        [`${root}/\uFFFD`]: 1,
        [`${root}x`]: 1,
      };
      for (const [namespace, count] of Object.entries(layout)) {
        for (let i = 0; i < count; i += 1) {
          await acme.call("kv/set", { namespace, key: `k${i}`, value: i });
        }
      }

      const items = await namespacesAll(acme, { namespace: root });
      const expected = sortByUtf8(
        Object.keys(layout).filter((name) => name !== `${root}x`),
      ).map((namespace) => ({ namespace, keys: layout[namespace] }));
      assert.deepEqual(items, expected);
    });

    test("wildcard characters match literally", async () => {
      const area = `${root}-wildcards`;
      const names = [
        `${area}/a_b`,
        `${area}/a_b/c`,
        `${area}/axb`,
        `${area}/axb/c`,
        `${area}/a%`,
        `${area}/a%/c`,
        `${area}/abc`,
        `${area}/a*`,
        `${area}/a[b]`,
        `${area}/a\\`,
      ];
      for (const namespace of names) {
        await acme.call("kv/set", { namespace, key: "k", value: 1 });
      }

      const cases: Array<[string, string[]]> = [
        [`${area}/a_b`, [`${area}/a_b`, `${area}/a_b/c`]],
        [`${area}/a%`, [`${area}/a%`, `${area}/a%/c`]],
        [`${area}/a*`, [`${area}/a*`]],
        [`${area}/a[b]`, [`${area}/a[b]`]],
        [`${area}/a\\`, [`${area}/a\\`]],
      ];
      for (const [namespace, expected] of cases) {
        const items = await namespacesAll(acme, { namespace });
        assert.deepEqual(
          items.map((item) => item.namespace),
          expected,
          `namespace ${namespace}`,
        );
      }
    });

    test("counts follow deletes", async () => {
      const area = `${root}-counts`;
      await acme.call("kv/set", { namespace: area, key: "a", value: 1 });
      await acme.call("kv/set", { namespace: area, key: "b", value: 1 });
      await acme.call("kv/set", {
        namespace: `${area}/sub`,
        key: "c",
        value: 1,
      });

      await acme.call("kv/delete", { namespace: area, key: "a" });
      const afterOne = await acme.call("kv/namespaces", { namespace: area });
      assert.deepEqual(afterOne.items, [
        { namespace: area, keys: 1 },
        { namespace: `${area}/sub`, keys: 1 },
      ]);

      await acme.call("kv/delete", { namespace: `${area}/sub`, key: "c" });
      const afterTwo = await acme.call("kv/namespaces", { namespace: area });
      assert.deepEqual(afterTwo.items, [{ namespace: area, keys: 1 }]);
    });

    test("tenant:acme excludes tenant:acme2", async () => {
      await withClient(fixture.keys.acme2, (client) =>
        client.call("kv/set", {
          namespace: "tenant:acme2/x",
          key: "k",
          value: 1,
        }),
      );
      await acme.call("kv/set", {
        namespace: "tenant:acme",
        key: "top",
        value: 1,
      });

      const items = await namespacesAll(acme, { namespace: "tenant:acme" });
      const names = items.map((item) => item.namespace);
      assert.ok(names.includes("tenant:acme"));
      for (const name of names) {
        assert.ok(
          name === "tenant:acme" || name.startsWith("tenant:acme/"),
          `listed ${name}`,
        );
      }
      assert.deepEqual(names, sortByUtf8(names));
    });

    test("paging visits every namespace once", async () => {
      const area = `${root}-paging`;
      const names = Array.from({ length: 5 }, (_, i) => `${area}/n${i}`);
      for (const namespace of names) {
        await acme.call("kv/set", { namespace, key: "k", value: 1 });
      }

      const first = await acme.call("kv/namespaces", {
        namespace: area,
        limit: 2,
      });
      assert.equal(first.items.length, 2);
      assert.equal(typeof first.nextCursor, "string");

      const items = await namespacesAll(acme, { namespace: area, limit: 2 });
      assert.deepEqual(
        items.map((item) => item.namespace),
        names,
      );

      const wrongNamespace = await acme.callError("kv/namespaces", {
        namespace: root,
        limit: 2,
        cursor: first.nextCursor,
      });
      assert.equal(wrongNamespace.code, -32602);

      const empty = await acme.callError("kv/namespaces", {
        namespace: area,
        cursor: "",
      });
      assert.equal(empty.code, -32602);

      const badLimit = await acme.callError("kv/namespaces", {
        namespace: area,
        limit: 0,
      });
      assert.equal(badLimit.code, -32602);
    });

    test("empty area gives empty items", async () => {
      const result = await acme.call("kv/namespaces", {
        namespace: `${root}-none`,
      });
      assert.deepEqual(result, {
        namespace: `${root}-none`,
        items: [],
        nextCursor: null,
      });
    });
  });

  describe("kv/mget", () => {
    const ns = "tenant:acme/mget";

    test("items in request order", async () => {
      await acme.call("kv/set", { namespace: ns, key: "a", value: "A" });
      await acme.call("kv/set", {
        namespace: `${ns}/sub`,
        key: "b",
        value: "B",
      });
      await acme.call("kv/set", { namespace: ns, key: "nothing", value: null });

      const result = await acme.call("kv/mget", {
        keys: [
          { namespace: `${ns}/sub`, key: "b" },
          { namespace: ns, key: "missing" },
          { namespace: ns, key: "a" },
          { namespace: ns, key: "nothing" },
        ],
      });
      assert.equal(result.items.length, 4);
      assert.equal(result.items[0].value, "B");
      assert.equal(result.items[0].namespace, `${ns}/sub`);
      assert.equal(result.items[1], null);
      assert.equal(result.items[2].value, "A");
      assert.ok(result.items[3] !== null, "a null value read as missing");
      assert.equal(result.items[3].value, null);
    });

    test("entry count bounds", async () => {
      const keys = Array.from({ length: 1001 }, (_, i) => ({
        namespace: ns,
        key: `k${i}`,
      }));
      const tooMany = await acme.callError("kv/mget", { keys });
      assert.equal(tooMany.code, -32602);
      assert.equal(tooMany.data?.index, undefined);

      const empty = await acme.callError("kv/mget", { keys: [] });
      assert.equal(empty.code, -32602);
      assert.equal(empty.data?.index, undefined);

      const max = await acme.call("kv/mget", { keys: keys.slice(0, 1000) });
      assert.equal(max.items.length, 1000);
    });

    test("entry errors carry index", async () => {
      const invalid = await acme.callError("kv/mget", {
        keys: [
          { namespace: ns, key: "a" },
          { namespace: ns, key: "b" },
          { namespace: ns, key: "" },
        ],
      });
      assert.equal(invalid.code, -32602);
      assert.equal(invalid.data?.index, 2);

      const missingKey = await acme.callError("kv/mget", {
        keys: [{ namespace: ns }],
      });
      assert.equal(missingKey.code, -32602);
      assert.equal(missingKey.data?.index, 0);

      const foreign = await acme.callError("kv/mget", {
        keys: [
          { namespace: ns, key: "a" },
          { namespace: "tenant:other/x", key: "k" },
        ],
      });
      assert.equal(foreign.code, -32003);
      assert.equal(foreign.data?.index, 1);
    });
  });

  describe("names and values", () => {
    const ns = "tenant:acme/names";

    test("__proto__ and constructor round-trip", async () => {
      for (const key of ["__proto__", "constructor", "prototype", "toString"]) {
        await acme.call("kv/set", { namespace: ns, key, value: key });
        const got = await acme.call("kv/get", { namespace: ns, key });
        assert.equal(got.key, key);
        assert.equal(got.value, key);
      }

      const valueText =
        '{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}},"toString":2}';
      const text = `{"jsonrpc":"2.0","id":"proto","method":"kv/set","params":{"namespace":"${ns}","key":"members","value":${valueText}}}`;
      const set = await exchangeRaw(acme, text);
      assert.equal(set.error, undefined, JSON.stringify(set.error));

      const got = await acme.call("kv/get", { namespace: ns, key: "members" });
      assert.deepEqual(got.value, JSON.parse(valueText));
      assert.equal(Object.hasOwn(got.value, "__proto__"), true);
      assert.deepEqual(got.value["__proto__"], { polluted: 1 });
      assert.equal(Object.getPrototypeOf(got.value), Object.prototype);

      const list = await acme.call("kv/list", { namespace: ns, prefix: "__" });
      assert.deepEqual(
        list.items.map((item: Message) => item.key),
        ["__proto__"],
      );
    });

    test("prototype-named namespaces and tenants", async () => {
      for (const segment of ["__proto__", "constructor", "hasOwnProperty"]) {
        const namespace = `${ns}/${segment}`;
        await acme.call("kv/set", { namespace, key: "k", value: segment });
        const got = await acme.call("kv/get", { namespace, key: "k" });
        assert.equal(got.value, segment);
        const listed = await acme.call("kv/namespaces", { namespace });
        assert.deepEqual(listed.items, [{ namespace, keys: 1 }]);
      }

      const constructorKey = await createKey(fixture.store.store, {
        tenant: "constructor",
      });
      await withClient(constructorKey, async (client) => {
        const first = await client.call("kv/set", {
          namespace: "tenant:constructor",
          key: "a",
          value: 1,
        });
        assert.equal(first.seq, 1);
        const second = await client.call("kv/set", {
          namespace: "tenant:constructor/b",
          key: "a",
          value: 2,
        });
        assert.equal(second.seq, 2);

        const listed = await client.call("kv/namespaces", {
          namespace: "tenant:constructor",
        });
        assert.deepEqual(listed.items, [
          { namespace: "tenant:constructor", keys: 1 },
          { namespace: "tenant:constructor/b", keys: 1 },
        ]);
      });
    });

    test("emoji and slash keys round-trip", async () => {
      for (const key of ["🔑", "😀/🎉", "a/b/c", "𝔸𝔹"]) {
        await acme.call("kv/set", { namespace: ns, key, value: { key } });
        const got = await acme.call("kv/get", { namespace: ns, key });
        assert.equal(got.key, key);
        assert.deepEqual(got.value, { key });
      }
    });

    test("key byte length bounds", async () => {
      const accepted = ["é".repeat(512), "😀".repeat(256), "k".repeat(1024)];
      for (const key of accepted) {
        assert.equal(Buffer.byteLength(key), 1024);
        const set = await acme.call("kv/set", { namespace: ns, key, value: 1 });
        assert.equal(set.key, key);
      }

      const rejected = [
        "é".repeat(512) + "k",
        "😀".repeat(256) + "k",
        "k".repeat(1025),
      ];
      for (const key of rejected) {
        assert.equal(Buffer.byteLength(key), 1025);
        const error = await acme.callError("kv/set", {
          namespace: ns,
          key,
          value: 1,
        });
        assert.equal(error.code, -32602);
      }
    });

    test("invalid keys rejected", async () => {
      for (const key of ["", 5, null, ["k"]]) {
        const error = await acme.callError("kv/set", {
          namespace: ns,
          key,
          value: 1,
        });
        assert.equal(error.code, -32602, `key ${JSON.stringify(key)}`);
      }
    });

    test("value size bounds", async () => {
      const exact = "x".repeat(maxValueBytes - 2);
      const set = await acme.call("kv/set", {
        namespace: ns,
        key: "exact",
        value: exact,
      });
      assert.equal(set.version, 1);
      const got = await acme.call("kv/get", { namespace: ns, key: "exact" });
      assert.equal(got.value, exact);

      const wide = "é".repeat((maxValueBytes - 2) / 2);
      assert.equal(Buffer.byteLength(JSON.stringify(wide)), maxValueBytes);
      await acme.call("kv/set", { namespace: ns, key: "wide", value: wide });

      const wideOver = await acme.callError("kv/set", {
        namespace: ns,
        key: "wide-over",
        value: `${wide}x`,
      });
      assert.equal(wideOver.code, -32602);
      assert.deepEqual(wideOver.data, {
        limit: maxValueBytes,
        size: maxValueBytes + 1,
      });

      const over = await acme.callError("kv/set", {
        namespace: ns,
        key: "over",
        value: `${exact}x`,
      });
      assert.equal(over.code, -32602);
      assert.deepEqual(over.data, {
        limit: maxValueBytes,
        size: maxValueBytes + 1,
      });

      const batchOver = await acme.callError("kv/batch", {
        operations: [
          { op: "set", namespace: ns, key: "small", value: 1 },
          { op: "set", namespace: ns, key: "over", value: `${exact}x` },
        ],
      });
      assert.equal(batchOver.code, -32602);
      assert.equal(batchOver.data?.index, 1);
      assert.equal(batchOver.data?.limit, maxValueBytes);
      assert.equal(batchOver.data?.size, maxValueBytes + 1);
    });

    test("value size counts compact JSON", async () => {
      // {"a":"..."} is 8 bytes around the string in compact form.
      const inner = "x".repeat(maxValueBytes - 8);
      const padded = `{ "a" :    "${inner}"    }`;
      const text = `{"jsonrpc":"2.0","id":"compact","method":"kv/set","params":{"namespace":"${ns}","key":"compact","value":${padded}}}`;
      const response = await exchangeRaw(acme, text);
      assert.equal(response.error, undefined, JSON.stringify(response.error));

      const got = await acme.call("kv/get", { namespace: ns, key: "compact" });
      assert.equal(Buffer.byteLength(JSON.stringify(got.value)), maxValueBytes);
    });

    test("deeply nested value round-trips", async () => {
      const depth = 1000;
      const value = JSON.parse("[".repeat(depth) + "]".repeat(depth));
      const set = await acme.call("kv/set", {
        namespace: ns,
        key: "deep",
        value,
      });
      assert.equal(set.version, 1);

      const got = await acme.call("kv/get", { namespace: ns, key: "deep" });
      assert.equal(JSON.stringify(got.value), JSON.stringify(value));
    });

    test("JSON escapes decode before use", async () => {
      const text = `{"jsonrpc":"2.0","id":"esc","method":"kv/set","params":{"namespace":"tenant:acme\\/names","key":"\\u0041\\/b","value":"\\/\\u00e9\\"\\\\\\b\\f\\n\\r\\t\\u2028"}}`;
      const response = await exchangeRaw(acme, text);
      assert.equal(response.error, undefined, JSON.stringify(response.error));
      assert.equal(response.result.namespace, ns);
      assert.equal(response.result.key, "A/b");

      const got = await acme.call("kv/get", { namespace: ns, key: "A/b" });
      assert.equal(got.value, '/é"\\\b\f\n\r\t\u2028');
    });

    test("size counts escaped characters", async () => {
      // JSON.stringify writes U+0001 as the six characters \u0001.
      const controls = "\u0001".repeat(10922);
      const exact = `${controls}ab`;
      assert.equal(Buffer.byteLength(JSON.stringify(exact)), maxValueBytes);
      const set = await acme.call("kv/set", {
        namespace: ns,
        key: "escaped",
        value: exact,
      });
      assert.equal(set.version, 1);

      const over = await acme.callError("kv/set", {
        namespace: ns,
        key: "escaped",
        value: `${controls}a"`,
      });
      assert.equal(over.code, -32602);
      assert.deepEqual(over.data, {
        limit: maxValueBytes,
        size: maxValueBytes + 1,
      });
    });

    test("null value differs from missing", async () => {
      await acme.call("kv/set", { namespace: ns, key: "null", value: null });
      const got = await acme.call("kv/get", { namespace: ns, key: "null" });
      assert.equal(Object.hasOwn(got, "value"), true);
      assert.equal(got.value, null);

      const list = await acme.call("kv/list", {
        namespace: ns,
        prefix: "null",
      });
      assert.equal(list.items.length, 1);
      assert.equal(Object.hasOwn(list.items[0], "value"), true);
      assert.equal(list.items[0].value, null);

      const missingValue = await acme.callError("kv/set", {
        namespace: ns,
        key: "no-value",
      });
      assert.equal(missingValue.code, -32602);
    });

    test("out-of-range numbers", async () => {
      for (const value of ["1e400", "-1e400", '{"a":[1e400]}']) {
        const text = `{"jsonrpc":"2.0","id":"big","method":"kv/set","params":{"namespace":"${ns}","key":"big","value":${value}}}`;
        const response = await exchangeRaw(acme, text);
        assertErrorResponse(response, -32602, "big");
      }
      const missing = await acme.callError("kv/get", {
        namespace: ns,
        key: "big",
      });
      assert.equal(missing.code, -32004);

      const largest = await exchangeRaw(
        acme,
        `{"jsonrpc":"2.0","id":"max","method":"kv/set","params":{"namespace":"${ns}","key":"max","value":1.7976931348623157e308}}`,
      );
      assert.equal(largest.error, undefined, JSON.stringify(largest.error));
      const max = await acme.call("kv/get", { namespace: ns, key: "max" });
      assert.equal(max.value, Number.MAX_VALUE);

      const tooLarge = await exchangeRaw(
        acme,
        `{"jsonrpc":"2.0","id":"over","method":"kv/set","params":{"namespace":"${ns}","key":"max","value":1.8e308}}`,
      );
      assertErrorResponse(tooLarge, -32602, "over");

      const tinyText = `{"jsonrpc":"2.0","id":"tiny","method":"kv/set","params":{"namespace":"${ns}","key":"tiny","value":[1e-400,2]}}`;
      const tiny = await exchangeRaw(acme, tinyText);
      assert.equal(tiny.error, undefined, JSON.stringify(tiny.error));
      const got = await acme.call("kv/get", { namespace: ns, key: "tiny" });
      assert.deepEqual(got.value, [0, 2]);
    });

    test("lone surrogates rejected everywhere", async () => {
      const lone = String.raw`\ud800`;
      const low = String.raw`\udc00`;
      const reversed = String.raw`\udc00\ud800`;
      const setParams = (fields: string) =>
        `{"jsonrpc":"2.0","id":"lone","method":"kv/set","params":{${fields}}}`;
      const cases = [
        setParams(`"namespace":"${ns}/x${lone}","key":"k","value":1`),
        setParams(`"namespace":"${ns}","key":"k${lone}","value":1`),
        setParams(`"namespace":"${ns}","key":"k${low}","value":1`),
        setParams(`"namespace":"${ns}","key":"k${reversed}","value":1`),
        setParams(`"namespace":"${ns}","key":"k","value":1,"actor":"a${lone}"`),
        setParams(`"namespace":"${ns}","key":"k","value":"v${lone}"`),
        setParams(`"namespace":"${ns}","key":"k","value":{"${lone}":1}`),
        setParams(`"namespace":"${ns}","key":"k","value":[{"a":["${low}"]}]`),
        `{"jsonrpc":"2.0","id":"lone","method":"kv/list","params":{"namespace":"${ns}","prefix":"${lone}"}}`,
        `{"jsonrpc":"2.0","id":"lone","method":"kv/get","params":{"namespace":"${ns}","key":"${lone}"}}`,
      ];
      for (const text of cases) {
        const response = await exchangeRaw(acme, text);
        assertErrorResponse(response, -32602, "lone");
      }
      const unwritten = await acme.callError("kv/get", {
        namespace: ns,
        key: "k",
      });
      assert.equal(unwritten.code, -32004);

      const pair = String.raw`\ud83d\ude00`;
      const valid = await exchangeRaw(
        acme,
        setParams(`"namespace":"${ns}","key":"pair${pair}","value":"${pair}"`),
      );
      assert.equal(valid.error, undefined, JSON.stringify(valid.error));
      const got = await acme.call("kv/get", { namespace: ns, key: "pair😀" });
      assert.equal(got.value, "😀");
    });

    test("control characters only inside values", async () => {
      const value = { text: "a\u0000b\u001f\u007f\n\t\r", ["k\u0001"]: 1 };
      await acme.call("kv/set", { namespace: ns, key: "controls", value });
      const got = await acme.call("kv/get", { namespace: ns, key: "controls" });
      assert.deepEqual(got.value, value);

      for (const key of ["a\u0000", "a\n", "a\u001f", "a\u007f"]) {
        const error = await acme.callError("kv/set", {
          namespace: ns,
          key,
          value: 1,
        });
        assert.equal(error.code, -32602, `key ${JSON.stringify(key)}`);
      }
      const actorError = await acme.callError("kv/set", {
        namespace: ns,
        key: "k",
        value: 1,
        actor: "bad\tactor",
      });
      assert.equal(actorError.code, -32602);
    });

    test("invalid namespaces rejected", async () => {
      const invalid = [
        "",
        "acme",
        "tenant",
        "tenant:",
        "Tenant:acme",
        " tenant:acme",
        "tenant:-acme",
        "tenant:.acme",
        "tenant:ac me",
        "tenant:acme ",
        "tenant:acmé",
        `tenant:a${"b".repeat(64)}`,
        "tenant:acme/",
        "tenant:acme//x",
        "tenant:acme/x/",
        "tenant:acme/./x",
        "tenant:acme/../x",
        "tenant:acme/.",
        "tenant:acme/..",
        "tenant:acme/x\u0001",
        "tenant:acme/x\u007f",
        "tenant:acme\u0000",
        `tenant:acme/${"n".repeat(501)}`,
      ];
      for (const namespace of invalid) {
        const error = await acme.callError("kv/get", { namespace, key: "k" });
        assert.equal(
          error.code,
          -32602,
          `namespace ${JSON.stringify(namespace)}`,
        );
      }
    });

    test("valid namespaces accepted", async () => {
      const ownTenant = [
        "tenant:acme",
        "tenant:acme/...",
        "tenant:acme/.x",
        "tenant:acme/x.",
        "tenant:acme/a b",
        "tenant:acme/é/😀",
        "tenant:acme/x:y",
        `tenant:acme/${"n".repeat(500)}`,
      ];
      for (const namespace of ownTenant) {
        const error = await acme.callError("kv/get", {
          namespace,
          key: "absent",
        });
        assert.equal(
          error.code,
          -32004,
          `namespace ${JSON.stringify(namespace)}`,
        );
      }
      assert.equal(Buffer.byteLength(ownTenant[ownTenant.length - 1]), 512);

      const set = await acme.call("kv/set", {
        namespace: ownTenant[ownTenant.length - 1],
        key: "k",
        value: 1,
      });
      assert.equal(set.version, 1);

      const otherTenants = [
        "tenant:a.b_c-d",
        `tenant:${"a".repeat(64)}`,
        "tenant:ACME",
        "tenant:acme2",
        "tenant:9",
      ];
      for (const namespace of otherTenants) {
        const error = await acme.callError("kv/get", { namespace, key: "k" });
        assert.equal(
          error.code,
          -32003,
          `namespace ${JSON.stringify(namespace)}`,
        );
      }
    });

    test("actor recorded as updatedBy", async () => {
      const withActor = await acme.call("kv/set", {
        namespace: ns,
        key: "actor",
        value: 1,
        actor: "auth0|u1",
      });
      assert.equal(withActor.updatedBy, "auth0|u1");
      const got = await acme.call("kv/get", { namespace: ns, key: "actor" });
      assert.equal(got.updatedBy, "auth0|u1");
      const list = await acme.call("kv/list", {
        namespace: ns,
        prefix: "actor",
      });
      assert.equal(list.items[0].updatedBy, "auth0|u1");

      const withoutActor = await acme.call("kv/set", {
        namespace: ns,
        key: "actor",
        value: 2,
      });
      assert.equal(withoutActor.updatedBy, fixture.keys.acme.id);
      const regot = await acme.call("kv/get", { namespace: ns, key: "actor" });
      assert.equal(regot.updatedBy, fixture.keys.acme.id);
    });

    test("actor length bounds", async () => {
      const longest = "é".repeat(128);
      assert.equal(Buffer.byteLength(longest), 256);
      const set = await acme.call("kv/set", {
        namespace: ns,
        key: "actor-long",
        value: 1,
        actor: longest,
      });
      assert.equal(set.updatedBy, longest);

      for (const actor of ["", `${longest}x`, 5]) {
        const error = await acme.callError("kv/set", {
          namespace: ns,
          key: "actor-bad",
          value: 1,
          actor,
        });
        assert.equal(error.code, -32602, `actor ${JSON.stringify(actor)}`);
      }
    });

    test("delete actor sent in change", async () => {
      await acme.call("kv/set", { namespace: ns, key: "watched", value: 1 });
      await withClient(fixture.keys.acme, async (watcher) => {
        await watcher.call("watch/subscribe", { namespace: ns });
        const deleted = await acme.call("kv/delete", {
          namespace: ns,
          key: "watched",
          actor: "cron|nightly",
        });
        const [change] = await watcher.waitForChanges(1);
        assert.equal(change.seq, deleted.seq);
        assert.equal(change.op, "delete");
        assert.equal(change.actor, "cron|nightly");
        assert.equal(Object.hasOwn(change, "value"), false);
      });
    });
  });
});
