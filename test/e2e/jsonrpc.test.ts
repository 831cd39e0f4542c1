import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  assertErrorResponse,
  exchangeRaw,
  framesBeforeProbe,
  requestText,
} from "../support/protocol-cases.js";
import { TestClient } from "../support/rpc-client.js";
import { ServerFixture, useServerFixture } from "../support/server-fixture.js";
import { forEachStore } from "../support/stores.js";

const ns = "tenant:acme/jsonrpc";

forEachStore("JSON-RPC", (kind) => {
  let client: TestClient;
  const fixture = new ServerFixture(kind, {
    keys: { acme: { tenant: "acme" } },
  });

  before(async () => {
    await fixture.start();
    client = await fixture.connect("acme");
  });

  after(async () => {
    await client?.close();
    await fixture.stop();
  });

  /** Opens a second connection with the same key for tests that need one. */
  function connect(): Promise<TestClient> {
    return fixture.connect("acme");
  }

  describe("parse and request errors", () => {
    test("invalid JSON gives parse error", async () => {
      for (const text of ['{"jsonrpc":"2.0","id":1,', "nope", "{'a':1}", ""]) {
        const response = await exchangeRaw(client, text);
        assertErrorResponse(response, -32700, null);
      }
    });

    test("near-JSON syntax gives parse error", async () => {
      const setWith = (value: string) =>
        `{"jsonrpc":"2.0","id":1,"method":"kv/set","params":{"namespace":"${ns}","key":"near","value":${value}}}`;
      const cases = [
        // An unescaped control character inside a string is invalid JSON.
        setWith('"a\u0001b"'),
        setWith("01"),
        setWith("+1"),
        setWith(".5"),
        setWith("NaN"),
        setWith("Infinity"),
        setWith("[1,]"),
        setWith('{"a":1,}'),
        setWith("'a'"),
        setWith("/* comment */ 1"),
        setWith("undefined"),
        // U+00A0 is not JSON whitespace.
        "\u00a0" + setWith("1"),
        setWith("1") + " x",
        setWith("1") + setWith("1"),
      ];
      for (const text of cases) {
        const response = await exchangeRaw(client, text);
        assertErrorResponse(response, -32700, null);
      }

      const error = await client.callError("kv/get", {
        namespace: ns,
        key: "near",
      });
      assert.equal(error.code, -32004);
    });

    test("invalid JSON batch gives one parse error", async () => {
      const text =
        '[{"jsonrpc":"2.0","id":1,"method":"kv/get"},{"jsonrpc":"2.0","method"]';
      const response = await exchangeRaw(client, text);
      assertErrorResponse(response, -32700, null);
    });

    test("JSON scalars are invalid requests", async () => {
      for (const text of ["5", '"kv/get"', "null", "true", "{}"]) {
        const response = await exchangeRaw(client, text);
        assertErrorResponse(response, -32600, null);
      }
    });

    test("request without method is invalid", async () => {
      const withoutId = await exchangeRaw(client, '{"jsonrpc":"2.0"}');
      assertErrorResponse(withoutId, -32600, null);

      const withId = await exchangeRaw(client, '{"jsonrpc":"2.0","id":9}');
      assertErrorResponse(withId, -32600, 9);
    });

    test("non-string method is invalid", async () => {
      const withId = await exchangeRaw(
        client,
        '{"jsonrpc":"2.0","id":"m","method":5}',
      );
      assertErrorResponse(withId, -32600, "m");

      // An object whose method is not a string is no notification, so the
      // server responds to it.
      const withoutId = await exchangeRaw(
        client,
        '{"jsonrpc":"2.0","method":1,"params":"bar"}',
      );
      assertErrorResponse(withoutId, -32600, null);
    });

    test("wrong jsonrpc member is invalid", async () => {
      const cases = [
        '{"jsonrpc":"1.0","id":7,"method":"kv/get"}',
        '{"jsonrpc":2.0,"id":7,"method":"kv/get"}',
        '{"jsonrpc":"2.0 ","id":7,"method":"kv/get"}',
        '{"id":7,"method":"kv/get"}',
      ];
      for (const text of cases) {
        const response = await exchangeRaw(client, text);
        assertErrorResponse(response, -32600, 7);
      }
    });
  });

  describe("request ids", () => {
    test("string, number and null ids echo", async () => {
      const ids = [
        "abc",
        "",
        "ключ 😀",
        0,
        -5,
        42,
        2.5,
        9007199254740991,
        null,
      ];
      for (const id of ids) {
        const response = await exchangeRaw(
          client,
          requestText(id, "kv/namespaces", { namespace: ns }),
        );
        assert.equal(response.jsonrpc, "2.0");
        assert.deepEqual(response.id, id);
        assert.equal("error" in response, false, JSON.stringify(response));
        assert.deepEqual(response.result.items, []);
      }
    });

    test("object, array and boolean ids rejected", async () => {
      const ids = ['{"a":1}', "[1]", "[]", "true", "false"];
      for (const id of ids) {
        const text = `{"jsonrpc":"2.0","id":${id},"method":"kv/namespaces","params":{"namespace":"${ns}"}}`;
        const response = await exchangeRaw(client, text);
        assertErrorResponse(response, -32600, null);
      }
    });
  });

  describe("notifications", () => {
    test("notification executes without reply", async () => {
      const frames = await framesBeforeProbe(client, () =>
        client.sendRaw(
          JSON.stringify({
            jsonrpc: "2.0",
            method: "kv/set",
            params: { namespace: ns, key: "notified", value: { n: 1 } },
          }),
        ),
      );
      assert.deepEqual(frames, []);

      const got = await client.call("kv/get", {
        namespace: ns,
        key: "notified",
      });
      assert.deepEqual(got.value, { n: 1 });
    });

    test("failing notifications get no reply", async () => {
      const notifications = [
        { jsonrpc: "2.0", method: "kv/nope" },
        { jsonrpc: "2.0", method: "kv/set", params: [ns, "k", 1] },
        { jsonrpc: "2.0", method: "kv/set", params: null },
        {
          jsonrpc: "2.0",
          method: "kv/get",
          params: { namespace: ns, key: "x" },
        },
        {
          jsonrpc: "2.0",
          method: "kv/get",
          params: { namespace: ns, Key: "x" },
        },
        { jsonrpc: "2.0", method: "rpc.nope" },
      ];
      const frames = await framesBeforeProbe(client, () => {
        for (const message of notifications) {
          client.sendRaw(JSON.stringify(message));
        }
      });
      assert.deepEqual(frames, []);
    });

    test("request with null id answered", async () => {
      const frames = await framesBeforeProbe(client, () =>
        client.sendRaw(requestText(null, "kv/nope")),
      );
      assert.equal(frames.length, 1);
      assertErrorResponse(frames[0], -32601, null);
    });
  });

  describe("batches", () => {
    test("empty batch gives one error", async () => {
      const response = await exchangeRaw(client, "[]");
      assertErrorResponse(response, -32600, null);
    });

    test("notification-only batch gets no reply", async () => {
      const batch = [
        {
          jsonrpc: "2.0",
          method: "kv/set",
          params: { namespace: ns, key: "batch-note", value: 1 },
        },
        { jsonrpc: "2.0", method: "kv/nope" },
      ];
      const frames = await framesBeforeProbe(client, () =>
        client.sendRaw(JSON.stringify(batch)),
      );
      assert.deepEqual(frames, []);

      const got = await client.call("kv/get", {
        namespace: ns,
        key: "batch-note",
      });
      assert.equal(got.value, 1);
    });

    test("frame after a batch waits for it", async () => {
      // A batch starting with a read, then a single write of the same key:
      // the write sent later must land later, and a read after both must
      // see it.
      const pipelined = await connect();
      try {
        for (let round = 0; round < 20; round++) {
          const key = `after-batch-${round}`;
          const batch = [
            {
              jsonrpc: "2.0",
              id: "batch-get",
              method: "kv/get",
              params: { namespace: ns, key },
            },
            {
              jsonrpc: "2.0",
              id: "batch-set",
              method: "kv/set",
              params: { namespace: ns, key, value: "batch" },
            },
          ];
          pipelined.sendRaw(JSON.stringify(batch));
          const later = pipelined.request("kv/set", {
            namespace: ns,
            key,
            value: "later",
          });
          const read = pipelined.request("kv/get", { namespace: ns, key });

          assert.equal((await later).result.version, 2, `round ${round}`);
          assert.equal((await read).result.value, "later", `round ${round}`);
        }
      } finally {
        await pipelined.close();
      }
    });

    test("batch of non-objects gives errors", async () => {
      const response = await exchangeRaw(client, "[1,2,3]");
      assert.ok(Array.isArray(response), "expected an array");
      assert.equal(response.length, 3);
      for (const entry of response) assertErrorResponse(entry, -32600, null);
    });

    test("nested empty batch is one invalid entry", async () => {
      const response = await exchangeRaw(client, "[[]]");
      assert.ok(Array.isArray(response), "expected an array");
      assert.equal(response.length, 1);
      assertErrorResponse(response[0], -32600, null);
    });

    test("mixed batch answers by id", async () => {
      const batch = [
        {
          jsonrpc: "2.0",
          id: "set",
          method: "kv/set",
          params: { namespace: ns, key: "mixed", value: "m" },
        },
        {
          jsonrpc: "2.0",
          method: "kv/set",
          params: { namespace: ns, key: "mixed-note", value: "n" },
        },
        { foo: "bar" },
        { jsonrpc: "2.0", id: 3, method: "kv/nope" },
        { jsonrpc: "2.0", id: 4, method: "kv/get", params: [ns] },
        {
          jsonrpc: "2.0",
          id: 5,
          method: "kv/get",
          params: { namespace: ns, key: "missing-in-batch" },
        },
      ];
      const response = await exchangeRaw(client, JSON.stringify(batch));
      assert.ok(Array.isArray(response), "expected an array");
      assert.equal(response.length, 5);

      const byId = (id: unknown) => response.filter((r: any) => r.id === id);
      assert.equal(byId("set").length, 1);
      assert.equal(byId("set")[0].result.version, 1);
      assert.equal(byId(null).length, 1);
      assertErrorResponse(byId(null)[0], -32600, null);
      assertErrorResponse(byId(3)[0], -32601, 3);
      assertErrorResponse(byId(4)[0], -32602, 4);
      assertErrorResponse(byId(5)[0], -32004, 5);

      const note = await client.call("kv/get", {
        namespace: ns,
        key: "mixed-note",
      });
      assert.equal(note.value, "n");
    });

    test("batch of 1,000 entries accepted", async () => {
      const batch = Array.from({ length: 1000 }, (_, i) => ({
        jsonrpc: "2.0",
        id: i,
        method: "kv/nope",
      }));
      const response = await exchangeRaw(client, JSON.stringify(batch));
      assert.ok(Array.isArray(response), "expected an array");
      assert.equal(response.length, 1000);
      const ids = response
        .map((r: any) => r.id)
        .sort((a: number, b: number) => a - b);
      assert.deepEqual(
        ids,
        batch.map((entry) => entry.id),
      );
      for (const entry of response) assert.equal(entry.error.code, -32601);
    });

    test("batch over 1,000 entries rejected", async () => {
      const batch: unknown[] = [
        {
          jsonrpc: "2.0",
          id: "write",
          method: "kv/set",
          params: { namespace: ns, key: "oversized-batch", value: 1 },
        },
      ];
      for (let i = 1; i <= 1000; i += 1) {
        batch.push({ jsonrpc: "2.0", id: i, method: "kv/nope" });
      }
      assert.equal(batch.length, 1001);

      const response = await exchangeRaw(client, JSON.stringify(batch));
      assertErrorResponse(response, -32600, null);

      const error = await client.callError("kv/get", {
        namespace: ns,
        key: "oversized-batch",
      });
      assert.equal(error.code, -32004);
    });
  });

  describe("params", () => {
    test("non-object params rejected", async () => {
      const cases = ['["tenant:acme","k"]', "[]", "5", '"x"', "true", "null"];
      for (const params of cases) {
        const text = `{"jsonrpc":"2.0","id":"p","method":"kv/get","params":${params}}`;
        const response = await exchangeRaw(client, text);
        assertErrorResponse(response, -32602, "p");
      }
    });

    test("omitted params read as empty", async () => {
      const omitted = await exchangeRaw(client, requestText("o", "kv/get"));
      const empty = await exchangeRaw(client, requestText("o", "kv/get", {}));
      assertErrorResponse(omitted, -32602, "o");
      assert.deepEqual(omitted, empty);

      const discover = await exchangeRaw(
        client,
        requestText("d", "rpc.discover"),
      );
      assert.equal("error" in discover, false, JSON.stringify(discover.error));
      assert.equal(typeof discover.result.openrpc, "string");
    });

    test("unknown param Cas rejected", async () => {
      const error = await client.callError("kv/set", {
        namespace: ns,
        key: "typo",
        value: 1,
        Cas: 0,
      });
      assert.equal(error.code, -32602);

      const missing = await client.callError("kv/get", {
        namespace: ns,
        key: "typo",
      });
      assert.equal(missing.code, -32004);
    });

    test("prototype-named params rejected", async () => {
      const setWith = (extra: string) =>
        `{"jsonrpc":"2.0","id":"proto","method":"kv/set","params":{"namespace":"${ns}","key":"proto","value":1,${extra}}}`;
      for (const extra of ['"__proto__":{"cas":5}', '"constructor":{}']) {
        const response = await exchangeRaw(client, setWith(extra));
        assertErrorResponse(response, -32602, "proto");
      }

      const batchText = `{"jsonrpc":"2.0","id":"proto","method":"kv/batch","params":{"operations":[{"op":"set","namespace":"${ns}","key":"proto","value":1,"__proto__":{"cas":9}}]}}`;
      const batch = await exchangeRaw(client, batchText);
      const error = assertErrorResponse(batch, -32602, "proto");
      assert.equal(error.data?.index, 0);

      const missing = await client.callError("kv/get", {
        namespace: ns,
        key: "proto",
      });
      assert.equal(missing.code, -32004);
    });

    test("unknown batch operation field rejected", async () => {
      const error = await client.callError("kv/batch", {
        operations: [
          { op: "set", namespace: ns, key: "b1", value: 1 },
          { op: "set", namespace: ns, key: "b2", value: 2, Cas: 0 },
        ],
      });
      assert.equal(error.code, -32602);
      assert.equal(error.data?.index, 1);
    });

    test("value on delete operation rejected", async () => {
      await client.call("kv/set", {
        namespace: ns,
        key: "del-value",
        value: 1,
      });
      const error = await client.callError("kv/batch", {
        operations: [
          { op: "set", namespace: ns, key: "del-other", value: 1 },
          { op: "set", namespace: ns, key: "del-other2", value: 1 },
          { op: "delete", namespace: ns, key: "del-value", value: null },
        ],
      });
      assert.equal(error.code, -32602);
      assert.equal(error.data?.index, 2);

      const kept = await client.call("kv/get", {
        namespace: ns,
        key: "del-value",
      });
      assert.equal(kept.version, 1);
    });

    test("unknown mget entry field rejected", async () => {
      const error = await client.callError("kv/mget", {
        keys: [
          { namespace: ns, key: "a" },
          { namespace: ns, key: "b" },
          { namespace: ns, key: "c", version: 1 },
        ],
      });
      assert.equal(error.code, -32602);
      assert.equal(error.data?.index, 2);
    });
  });

  describe("methods", () => {
    test("unknown method not found", async () => {
      for (const method of ["kv/nope", "KV/GET", "kv/get/", "rpc.nope", ""]) {
        const response = await exchangeRaw(
          client,
          requestText("u", method, {}),
        );
        assertErrorResponse(response, -32601, "u");
      }
    });

    test("rpc.discover lists every method", async () => {
      const document = await client.call("rpc.discover");
      assert.equal(typeof document.openrpc, "string");
      assert.match(document.openrpc, /^1\.\d+\.\d+$/);
      assert.equal(typeof document.info?.title, "string");
      assert.equal(typeof document.info?.version, "string");
      assert.ok(Array.isArray(document.methods), "methods is not an array");

      const expected: Record<
        string,
        { required: string[]; optional: string[] }
      > = {
        "kv/get": { required: ["namespace", "key"], optional: [] },
        "kv/list": {
          required: ["namespace"],
          optional: ["prefix", "limit", "cursor"],
        },
        "kv/namespaces": {
          required: ["namespace"],
          optional: ["limit", "cursor"],
        },
        "kv/mget": { required: ["keys"], optional: [] },
        "kv/set": {
          required: ["namespace", "key", "value"],
          optional: ["actor", "cas"],
        },
        "kv/delete": {
          required: ["namespace", "key"],
          optional: ["actor", "cas"],
        },
        "kv/batch": { required: ["operations"], optional: ["actor"] },
        "watch/subscribe": {
          required: ["namespace"],
          optional: ["fromSeq", "storeId"],
        },
        "watch/unsubscribe": { required: ["namespace"], optional: [] },
      };

      const names = document.methods.map((method: any) => method.name);
      for (const name of Object.keys(expected)) {
        assert.ok(names.includes(name), `${name} is not listed`);
      }

      for (const [name, shape] of Object.entries(expected)) {
        const method = document.methods.find((m: any) => m.name === name);
        assert.equal(method.paramStructure, "by-name", name);
        assert.ok(Array.isArray(method.params), `${name} params`);

        const paramNames = method.params.map((p: any) => p.name).sort();
        assert.deepEqual(
          paramNames,
          [...shape.required, ...shape.optional].sort(),
          name,
        );
        for (const param of method.params) {
          const label = `${name} ${param.name}`;
          assert.equal(typeof param.schema, "object", label);
          assert.ok(param.schema !== null, label);
          assert.equal(
            param.required === true,
            shape.required.includes(param.name),
            `${label} required flag`,
          );
        }

        assert.equal(typeof method.result?.name, "string", `${name} result`);
        assert.equal(typeof method.result?.schema, "object", `${name} result`);
        assert.ok(method.result.schema !== null, `${name} result schema`);

        assert.ok(Array.isArray(method.errors), `${name} errors`);
        for (const error of method.errors) {
          assert.equal(
            Number.isInteger(error.code),
            true,
            `${name} error code`,
          );
          assert.equal(typeof error.message, "string", `${name} error message`);
        }
      }

      const codesOf = (name: string) =>
        document.methods
          .find((m: any) => m.name === name)
          .errors.map((e: any) => e.code);
      for (const name of Object.keys(expected)) {
        assert.ok(codesOf(name).includes(-32602), `${name} lists -32602`);
        assert.ok(codesOf(name).includes(-32003), `${name} lists -32003`);
      }
      assert.ok(codesOf("kv/get").includes(-32004));
      for (const name of ["kv/set", "kv/delete", "kv/batch"]) {
        assert.ok(codesOf(name).includes(-32002), `${name} lists -32002`);
        assert.ok(codesOf(name).includes(-32005), `${name} lists -32005`);
      }
      assert.ok(codesOf("kv/delete").includes(-32004));
      assert.ok(codesOf("kv/batch").includes(-32004));
      assert.ok(codesOf("watch/subscribe").includes(-32006));
      assert.ok(codesOf("watch/subscribe").includes(-32007));
    });

    test("rpc.discover schemas match results", async () => {
      const document = await client.call("rpc.discover");

      /** Follows a local `$ref` such as `#/components/schemas/Name`. */
      const resolve = (schema: any): any => {
        if (typeof schema?.$ref !== "string") return schema;
        const path = schema.$ref.replace(/^#\//, "").split("/");
        return resolve(
          path.reduce((node: any, part: string) => node?.[part], document),
        );
      };
      /** Collects property names, also from anyOf, oneOf and allOf branches. */
      const propertiesOf = (schema: any): string[] => {
        const resolved = resolve(schema) ?? {};
        const names = Object.keys(resolved.properties ?? {});
        for (const branch of [
          ...(resolved.anyOf ?? []),
          ...(resolved.oneOf ?? []),
          ...(resolved.allOf ?? []),
        ]) {
          names.push(...propertiesOf(branch));
        }
        return [...new Set(names)].sort();
      };
      const method = (name: string) =>
        document.methods.find((m: any) => m.name === name);
      const param = (name: string, paramName: string) =>
        resolve(
          method(name).params.find((p: any) => p.name === paramName).schema,
        );

      const resultMembers: Record<string, string[]> = {
        "kv/get": [
          "namespace",
          "key",
          "value",
          "version",
          "updatedBy",
          "updatedAt",
        ],
        "kv/list": ["namespace", "items", "nextCursor"],
        "kv/namespaces": ["namespace", "items", "nextCursor"],
        "kv/mget": ["items"],
        "kv/set": [
          "namespace",
          "key",
          "version",
          "updatedBy",
          "updatedAt",
          "seq",
        ],
        "kv/delete": ["namespace", "key", "version", "seq"],
        "kv/batch": ["results"],
        "watch/subscribe": ["namespace", "seq", "storeId"],
        "watch/unsubscribe": ["namespace", "unsubscribed"],
      };
      for (const [name, members] of Object.entries(resultMembers)) {
        const schema = resolve(method(name).result.schema);
        assert.deepEqual(propertiesOf(schema), [...members].sort(), name);
        assert.deepEqual(
          [...(schema.required ?? [])].sort(),
          [...members].sort(),
          name,
        );
      }

      for (const name of ["kv/list", "kv/namespaces"]) {
        const limit = param(name, "limit");
        assert.equal(limit.type, "integer", `${name} limit type`);
        assert.equal(limit.minimum, 1, `${name} limit minimum`);
        assert.equal(limit.maximum, 1000, `${name} limit maximum`);
      }
      for (const name of ["kv/set", "kv/delete"]) {
        const cas = param(name, "cas");
        assert.equal(cas.type, "integer", `${name} cas type`);
        assert.equal(cas.minimum, 0, `${name} cas minimum`);
      }

      // A generated client needs the shape of each entry, not only "array".
      const mgetKeys = param("kv/mget", "keys");
      assert.equal(mgetKeys.type, "array");
      assert.deepEqual(propertiesOf(mgetKeys.items), ["key", "namespace"]);
      assert.equal(mgetKeys.minItems, 1, "kv/mget keys minItems");
      assert.equal(mgetKeys.maxItems, 1000, "kv/mget keys maxItems");

      const operations = param("kv/batch", "operations");
      assert.equal(operations.type, "array");
      assert.deepEqual(propertiesOf(operations.items), [
        "cas",
        "key",
        "namespace",
        "op",
        "value",
      ]);
      assert.equal(operations.minItems, 1, "kv/batch operations minItems");
      assert.equal(operations.maxItems, 500, "kv/batch operations maxItems");
    });
  });

  describe("frames", () => {
    test("binary frame rejected and not executed", async () => {
      const text = requestText("bin", "kv/set", {
        namespace: ns,
        key: "binary",
        value: 1,
      });
      const response = await exchangeRaw(client, Buffer.from(text), {
        binary: true,
      });
      assertErrorResponse(response, -32600, null);

      const error = await client.callError("kv/get", {
        namespace: ns,
        key: "binary",
      });
      assert.equal(error.code, -32004);
    });

    test("binary batch frame not executed", async () => {
      const batch = JSON.stringify([
        {
          jsonrpc: "2.0",
          method: "kv/set",
          params: { namespace: ns, key: "binary-batch", value: 1 },
        },
      ]);
      const response = await exchangeRaw(client, Buffer.from(batch), {
        binary: true,
      });
      assertErrorResponse(response, -32600, null);

      const error = await client.callError("kv/get", {
        namespace: ns,
        key: "binary-batch",
      });
      assert.equal(error.code, -32004);
    });

    test("pipelined requests answered in order", async () => {
      const pipelined = await connect();
      try {
        const sent: Array<{ kind: "set" | "get"; value: number; reply: any }> =
          [];
        for (let i = 0; i < 200; i += 1) {
          const key = `pipe-${Math.floor(i / 2) % 7}`;
          if (i % 2 === 0) {
            const reply = pipelined.request("kv/set", {
              namespace: ns,
              key,
              value: i,
            });
            sent.push({ kind: "set", value: i, reply });
          } else {
            const reply = pipelined.request("kv/get", { namespace: ns, key });
            sent.push({ kind: "get", value: i - 1, reply });
          }
        }
        const replies = await Promise.all(sent.map((entry) => entry.reply));

        const receivedIds = pipelined.received.map((frame) => frame.id);
        assert.deepEqual(
          receivedIds,
          replies.map((reply) => reply.id),
        );
        assert.deepEqual(
          receivedIds,
          Array.from({ length: 200 }, (_, i) => i + 1),
        );
        sent.forEach((entry, i) => {
          assert.equal(replies[i].error, undefined, JSON.stringify(replies[i]));
          if (entry.kind === "get") {
            assert.equal(replies[i].result.value, entry.value, `request ${i}`);
          }
        });
      } finally {
        await pipelined.close();
      }
    });

    test("batch and single requests stay ordered", async () => {
      const pipelined = await connect();
      try {
        const key = "ordered-batch";
        pipelined.sendRaw(
          JSON.stringify([
            {
              jsonrpc: "2.0",
              id: "b1",
              method: "kv/set",
              params: { namespace: ns, key, value: "from batch" },
            },
          ]),
        );
        pipelined.sendRaw(
          requestText("single", "kv/get", { namespace: ns, key }),
        );
        pipelined.sendRaw(
          JSON.stringify([
            {
              jsonrpc: "2.0",
              id: "b2",
              method: "kv/get",
              params: { namespace: ns, key },
            },
          ]),
        );
        await pipelined.waitFor(() => pipelined.received.length >= 3);

        const [first, second, third] = pipelined.received;
        assert.ok(Array.isArray(first), "first frame is not the batch");
        assert.equal(first[0].id, "b1");
        assert.equal(second.id, "single");
        assert.equal(second.result.value, "from batch");
        assert.ok(Array.isArray(third), "third frame is not the batch");
        assert.equal(third[0].id, "b2");
        assert.equal(third[0].result.value, "from batch");
      } finally {
        await pipelined.close();
      }
    });

    test("duplicate member names: last counts", async () => {
      const setText =
        `{"jsonrpc":"2.0","id":"dup","method":"kv/get","method":"kv/set",` +
        `"params":{"namespace":"${ns}","key":5,"key":"dup","value":1,"value":{"a":1,"a":2}}}`;
      const set = await exchangeRaw(client, setText);
      assert.equal(set.id, "dup");
      assert.equal(set.error, undefined, JSON.stringify(set.error));
      assert.equal(set.result.key, "dup");

      const got = await client.call("kv/get", { namespace: ns, key: "dup" });
      assert.deepEqual(got.value, { a: 2 });

      const idText = `{"jsonrpc":"2.0","id":1,"id":"second","method":"kv/get","params":{"namespace":"${ns}","key":"dup"}}`;
      const idResponse = await exchangeRaw(client, idText);
      assert.equal(idResponse.id, "second");
      assert.deepEqual(idResponse.result.value, { a: 2 });

      const invalidLast = `{"jsonrpc":"2.0","id":"bad","method":"kv/set","params":{"namespace":"${ns}","key":"dup-bad","key":5,"value":1}}`;
      const rejected = await exchangeRaw(client, invalidLast);
      assertErrorResponse(rejected, -32602, "bad");
    });

    test("duplicate namespace: last one authorized", async () => {
      const ownLast = `{"jsonrpc":"2.0","id":"own","method":"kv/set","params":{"namespace":"tenant:other/x","namespace":"${ns}","key":"dup-ns","value":1}}`;
      const written = await exchangeRaw(client, ownLast);
      assert.equal(written.error, undefined, JSON.stringify(written.error));
      assert.equal(written.result.namespace, ns);

      const foreignLast = `{"jsonrpc":"2.0","id":"foreign","method":"kv/set","params":{"namespace":"${ns}","namespace":"tenant:other/x","key":"dup-ns-2","value":1}}`;
      const refused = await exchangeRaw(client, foreignLast);
      assertErrorResponse(refused, -32003, "foreign");
      const missing = await client.callError("kv/get", {
        namespace: ns,
        key: "dup-ns-2",
      });
      assert.equal(missing.code, -32004);

      const batchText = `{"jsonrpc":"2.0","id":"ops","method":"kv/batch","params":{"operations":[{"op":"delete","op":"set","namespace":"${ns}","key":"dup-op","value":1}]}}`;
      const batch = await exchangeRaw(client, batchText);
      assert.equal(batch.error, undefined, JSON.stringify(batch.error));
      const got = await client.call("kv/get", { namespace: ns, key: "dup-op" });
      assert.equal(got.value, 1);
    });
  });

  describe("frame size limit", () => {
    const limit = 4096;
    const smallFixture = useServerFixture(kind, {
      keys: { acme: { tenant: "acme" } },
      // The server rejects a value limit above the message limit.
      args: [
        "--max-message-bytes",
        String(limit),
        "--max-value-bytes",
        String(limit / 2),
      ],
    });

    /** Returns a kv/set request padded to exactly `bytes` bytes of UTF-8. */
    function setFrameOfSize(key: string, bytes: number): string {
      // Two-byte characters make sure bytes, not characters, are counted. The
      // value stays under the value limit, and spaces fill the rest.
      const value = "é".repeat(500);
      const head = `{"jsonrpc":"2.0","id":"size","method":"kv/set","params":{"namespace":"${ns}","key":"${key}","value":"${value}"`;
      const tail = "}}";
      const padding = bytes - Buffer.byteLength(head + tail);
      const text = head + " ".repeat(padding) + tail;
      assert.equal(Buffer.byteLength(text), bytes);
      return text;
    }

    test("frame of exactly limit accepted", async () => {
      const small = await TestClient.connect(smallFixture.server.url, {
        apiKey: smallFixture.keys.acme.key,
      });
      try {
        const response = await exchangeRaw(
          small,
          setFrameOfSize("exact", limit),
        );
        assert.equal(response.error, undefined, JSON.stringify(response.error));
        assert.equal(response.result.version, 1);
      } finally {
        await small.close();
      }
    });

    test("limit counts uncompressed bytes", async () => {
      const exact = await TestClient.connect(smallFixture.server.url, {
        apiKey: smallFixture.keys.acme.key,
        perMessageDeflate: true,
      });
      try {
        const response = await exchangeRaw(
          exact,
          setFrameOfSize("deflated", limit),
        );
        assert.equal(response.error, undefined, JSON.stringify(response.error));
      } finally {
        await exact.close();
      }

      const over = await TestClient.connect(smallFixture.server.url, {
        apiKey: smallFixture.keys.acme.key,
        perMessageDeflate: true,
      });
      over.sendRaw(setFrameOfSize("deflated-over", limit + 1));
      const closed = await over.closed;
      assert.equal(closed.code, 1009);
    });

    test("frame over limit closes 1009", async () => {
      const small = await TestClient.connect(smallFixture.server.url, {
        apiKey: smallFixture.keys.acme.key,
      });
      small.sendRaw(setFrameOfSize("over", limit + 1));
      const closed = await small.closed;
      assert.equal(closed.code, 1009);
      assert.deepEqual(small.received, []);

      const reader = await TestClient.connect(smallFixture.server.url, {
        apiKey: smallFixture.keys.acme.key,
      });
      try {
        const error = await reader.callError("kv/get", {
          namespace: ns,
          key: "over",
        });
        assert.equal(error.code, -32004);
      } finally {
        await reader.close();
      }
    });
  });
});
