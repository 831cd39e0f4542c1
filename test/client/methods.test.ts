import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { ErrorCode, KvError, type KvClient } from "../../src/client/index.js";
import { kvErrorOf } from "../support/client-helpers.js";
import { useClientServer } from "../support/client-server.js";

const fixture = useClientServer({
  key: { tenant: "acme" },
  keys: { agent: { tenant: "acme", role: "agent" } },
});
let client: KvClient;
let agent: KvClient;

const root = "tenant:acme/methods";

before(async () => {
  client = await fixture.openShared();
  agent = await fixture.openShared({ key: "agent" });
});

describe("set and get", () => {
  it("set returns the new version and seq", async () => {
    const result = await client.set({
      namespace: `${root}/set`,
      key: "theme",
      value: { mode: "dark" },
    });

    assert.equal(result.namespace, `${root}/set`);
    assert.equal(result.key, "theme");
    assert.equal(result.version, 1);
    assert.equal(result.updatedBy, fixture.key.id);
    assert.equal(typeof result.seq, "number");
  });

  it("get returns the stored entry", async () => {
    await client.set({ namespace: `${root}/get`, key: "k", value: [1, "a"] });

    const entry = await client.get({ namespace: `${root}/get`, key: "k" });

    assert.deepEqual(entry.value, [1, "a"]);
    assert.equal(entry.version, 1);
    assert.equal(entry.updatedBy, fixture.key.id);
  });

  it("get of a missing key is NotFound", async () => {
    const error = await kvErrorOf(
      client.get({ namespace: `${root}/get`, key: "missing" }),
    );

    assert.ok(error instanceof KvError);
    assert.equal(error.name, "KvError");
    assert.equal(error.code, ErrorCode.NotFound);
    assert.equal(error.code, -32004);
    assert.deepEqual(error.data, { namespace: `${root}/get`, key: "missing" });
  });

  it("set with a stale cas is CasConflict", async () => {
    const namespace = `${root}/cas`;
    await client.set({ namespace, key: "k", value: 1 });

    const error = await kvErrorOf(
      client.set({ namespace, key: "k", value: 2, cas: 7 }),
    );

    assert.equal(error.code, ErrorCode.CasConflict);
    assert.deepEqual(error.data, {
      namespace,
      key: "k",
      expected: 7,
      actual: 1,
    });
  });

  it("set with the current cas succeeds", async () => {
    const namespace = `${root}/cas-ok`;
    await client.set({ namespace, key: "k", value: 1 });

    const result = await client.set({ namespace, key: "k", value: 2, cas: 1 });

    assert.equal(result.version, 2);
  });

  it("set with an actor records it", async () => {
    const namespace = `${root}/actor`;
    await client.set({ namespace, key: "k", value: 1, actor: "auth0|u1" });

    const entry = await client.get({ namespace, key: "k" });

    assert.equal(entry.updatedBy, "auth0|u1");
  });

  it("invalid params are InvalidParams", async () => {
    const error = await kvErrorOf(
      client.set({ namespace: "not-a-namespace", key: "k", value: 1 }),
    );

    assert.equal(error.code, ErrorCode.InvalidParams);
  });

  it("another tenant's namespace is Unauthorized", async () => {
    const error = await kvErrorOf(
      client.get({ namespace: "tenant:other", key: "k" }),
    );

    assert.equal(error.code, ErrorCode.Unauthorized);
  });

  it("agent key writing is ReadOnly", async () => {
    const error = await kvErrorOf(
      agent.set({ namespace: `${root}/agent`, key: "k", value: 1 }),
    );

    assert.equal(error.code, ErrorCode.ReadOnly);
  });
});

describe("delete", () => {
  it("delete returns the deleted version", async () => {
    const namespace = `${root}/delete`;
    await client.set({ namespace, key: "k", value: 1 });

    const result = await client.delete({ namespace, key: "k" });

    assert.equal(result.version, 2);
    assert.equal(result.key, "k");
    const error = await kvErrorOf(client.get({ namespace, key: "k" }));
    assert.equal(error.code, ErrorCode.NotFound);
  });

  it("delete of a missing key is NotFound", async () => {
    const namespace = `${root}/delete`;
    const error = await kvErrorOf(client.delete({ namespace, key: "none" }));

    assert.equal(error.code, ErrorCode.NotFound);
    assert.deepEqual(error.data, { namespace, key: "none" });
  });

  it("delete with a stale cas is CasConflict", async () => {
    const namespace = `${root}/delete`;
    const error = await kvErrorOf(
      client.delete({ namespace, key: "none", cas: 5 }),
    );

    assert.equal(error.code, ErrorCode.CasConflict);
    assert.deepEqual(error.data, {
      namespace,
      key: "none",
      expected: 5,
      actual: 0,
    });
  });
});

describe("list and namespaces", () => {
  const namespace = `${root}/list`;
  const keys = ["a1", "a2", "a3", "b1", "b2"];

  before(async () => {
    for (const key of keys) await client.set({ namespace, key, value: key });
    await client.set({ namespace: `${namespace}/child`, key: "c", value: 0 });
  });

  it("list returns one page", async () => {
    const page = await client.list({ namespace, limit: 2 });

    assert.deepEqual(
      page.items.map((item) => item.key),
      ["a1", "a2"],
    );
    assert.equal(typeof page.nextCursor, "string");
  });

  it("listPages walks every page", async () => {
    const seen: string[] = [];
    let pages = 0;
    for await (const page of client.listPages({ namespace, limit: 2 })) {
      pages++;
      seen.push(...page.items.map((item) => item.key));
    }

    assert.deepEqual(seen, keys);
    assert.equal(pages, 3);
  });

  it("listPages keeps the prefix", async () => {
    const seen: string[] = [];
    for await (const page of client.listPages({
      namespace,
      prefix: "b",
      limit: 1,
    })) {
      seen.push(...page.items.map((item) => item.key));
    }

    assert.deepEqual(seen, ["b1", "b2"]);
  });

  it("malformed cursor is InvalidParams", async () => {
    const error = await kvErrorOf(
      client.list({ namespace, cursor: "not-a-cursor" }),
    );

    assert.equal(error.code, ErrorCode.InvalidParams);
  });

  it("namespaces lists namespaces with key counts", async () => {
    const page = await client.namespaces({ namespace });

    assert.deepEqual(page.items, [
      { namespace, keys: keys.length },
      { namespace: `${namespace}/child`, keys: 1 },
    ]);
    assert.equal(page.nextCursor, null);
  });

  it("namespacePages walks every page", async () => {
    const seen: string[] = [];
    for await (const page of client.namespacePages({ namespace, limit: 1 })) {
      seen.push(...page.items.map((item) => item.namespace));
    }

    assert.deepEqual(seen, [namespace, `${namespace}/child`]);
  });

  it("namespaces outside the tenant is Unauthorized", async () => {
    const error = await kvErrorOf(
      client.namespaces({ namespace: "tenant:other" }),
    );

    assert.equal(error.code, ErrorCode.Unauthorized);
  });
});

describe("mget", () => {
  const namespace = `${root}/mget`;

  it("mget returns entries and null for missing keys", async () => {
    await client.set({ namespace, key: "x", value: "X" });

    const result = await client.mget({
      keys: [
        { namespace, key: "x" },
        { namespace, key: "missing" },
      ],
    });

    assert.equal(result.items.length, 2);
    assert.equal(result.items[0]?.value, "X");
    assert.equal(result.items[1], null);
  });

  it("mget with a foreign entry names its index", async () => {
    const error = await kvErrorOf(
      client.mget({
        keys: [
          { namespace, key: "x" },
          { namespace: "tenant:other", key: "x" },
        ],
      }),
    );

    assert.equal(error.code, ErrorCode.Unauthorized);
    assert.equal(error.data?.index, 1);
  });

  it("empty mget is InvalidParams", async () => {
    const error = await kvErrorOf(client.mget({ keys: [] }));

    assert.equal(error.code, ErrorCode.InvalidParams);
  });
});

describe("batch", () => {
  const namespace = `${root}/batch`;

  it("batch applies every operation in order", async () => {
    const result = await client.batch({
      operations: [
        { op: "set", namespace, key: "a", value: 1 },
        { op: "set", namespace, key: "a", value: 2 },
        { op: "delete", namespace, key: "a" },
      ],
    });

    assert.deepEqual(
      result.results.map((item) => item.version),
      [1, 2, 3],
    );
    const seqs = result.results.map((item) => item.seq);
    assert.deepEqual(seqs, [seqs[0], seqs[0] + 1, seqs[0] + 2]);
  });

  it("failing operation names its index and writes nothing", async () => {
    const error = await kvErrorOf(
      client.batch({
        operations: [
          { op: "set", namespace, key: "b", value: 1 },
          { op: "delete", namespace, key: "never-there" },
        ],
      }),
    );

    assert.equal(error.code, ErrorCode.NotFound);
    assert.deepEqual(error.data, {
      namespace,
      key: "never-there",
      index: 1,
    });
    const missing = await kvErrorOf(client.get({ namespace, key: "b" }));
    assert.equal(missing.code, ErrorCode.NotFound);
  });

  it("batch with a cas conflict is CasConflict", async () => {
    const error = await kvErrorOf(
      client.batch({
        operations: [{ op: "set", namespace, key: "c", value: 1, cas: 3 }],
      }),
    );

    assert.equal(error.code, ErrorCode.CasConflict);
    assert.equal(error.data?.index, 0);
    assert.equal(error.data?.actual, 0);
  });

  it("agent key batch is ReadOnly", async () => {
    const error = await kvErrorOf(
      agent.batch({
        operations: [{ op: "set", namespace, key: "d", value: 1 }],
      }),
    );

    assert.equal(error.code, ErrorCode.ReadOnly);
  });
});

describe("error constants", () => {
  it("protocol codes equal the server's", async () => {
    const { ErrorCode: serverCodes } =
      await import("../../src/protocol/errors.js");

    for (const [name, code] of Object.entries(serverCodes)) {
      assert.equal(ErrorCode[name as keyof typeof ErrorCode], code, name);
    }
  });

  it("client codes lie outside JSON-RPC's range", async () => {
    const { ClientErrorCode } = await import("../../src/client/index.js");

    for (const [name, code] of Object.entries(ClientErrorCode)) {
      assert.ok(code > -32000 || code < -32768, name);
    }
  });
});
