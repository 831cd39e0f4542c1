import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  assertErrorResponse,
  postRpc,
  requestText,
  sendHttp,
  upgradeStatus,
  type HttpReply,
} from "../support/protocol-cases.js";
import { TestClient } from "../support/rpc-client.js";
import { useServerFixture } from "../support/server-fixture.js";
import { forEachStore } from "../support/stores.js";

const maxMessageBytes = 1024 * 1024;
const ns = "tenant:acme/http";

forEachStore("HTTP", (kind) => {
  const fixture = useServerFixture(kind, {
    keys: { acme: { tenant: "acme" } },
  });

  /** Posts `body` with the acme key and the JSON media type. */
  function post(body: string | Buffer, contentType?: string | null) {
    return postRpc(fixture.server.httpUrl, body, {
      apiKey: fixture.keys.acme.key,
      contentType,
    });
  }

  /** Parses a reply body as JSON after checking its status and media type. */
  function jsonBody(reply: HttpReply, status = 200): any {
    assert.equal(reply.status, status, reply.body);
    assert.match(
      String(reply.headers["content-type"]),
      /^application\/json\b/i,
    );
    return JSON.parse(reply.body);
  }

  /** Returns a JSON-RPC request padded with spaces to exactly `bytes` bytes. */
  function paddedRequest(
    id: string,
    method: string,
    params: unknown,
    bytes: number,
  ) {
    const text = requestText(id, method, params);
    const padded = text + " ".repeat(bytes - Buffer.byteLength(text));
    assert.equal(Buffer.byteLength(padded), bytes);
    return padded;
  }

  /** Reads a key over HTTP and returns the JSON-RPC response. */
  async function getOverHttp(key: string): Promise<any> {
    const reply = await post(
      requestText("read", "kv/get", { namespace: ns, key }),
    );
    return jsonBody(reply);
  }

  describe("POST /rpc calls", () => {
    test("single call with bearer key", async () => {
      const setReply = await post(
        requestText(1, "kv/set", {
          namespace: ns,
          key: "single",
          value: { a: 1 },
        }),
      );
      const set = jsonBody(setReply);
      assert.equal(set.jsonrpc, "2.0");
      assert.equal(set.id, 1);
      assert.equal(set.result.version, 1);
      assert.equal(set.result.updatedBy, fixture.keys.acme.id);

      const got = await getOverHttp("single");
      assert.equal(got.id, "read");
      assert.deepEqual(got.result.value, { a: 1 });

      const socket = await TestClient.connect(fixture.server.url, {
        apiKey: fixture.keys.acme.key,
      });
      try {
        const viaSocket = await socket.call("kv/get", {
          namespace: ns,
          key: "single",
        });
        assert.deepEqual(viaSocket, got.result);
      } finally {
        await socket.close();
      }
    });

    test("every kv method works", async () => {
      const calls: Array<[string, unknown]> = [
        ["kv/set", { namespace: ns, key: "m1", value: 1 }],
        [
          "kv/batch",
          {
            operations: [
              { op: "set", namespace: ns, key: "m2", value: 2 },
              { op: "set", namespace: `${ns}/sub`, key: "m3", value: 3 },
            ],
          },
        ],
        ["kv/get", { namespace: ns, key: "m1" }],
        ["kv/list", { namespace: ns, prefix: "m" }],
        ["kv/namespaces", { namespace: ns }],
        [
          "kv/mget",
          {
            keys: [
              { namespace: ns, key: "m2" },
              { namespace: ns, key: "m9" },
            ],
          },
        ],
        ["kv/delete", { namespace: ns, key: "m1" }],
      ];
      const results: Record<string, any> = {};
      for (const [method, params] of calls) {
        const response = jsonBody(
          await post(requestText(method, method, params)),
        );
        assert.equal(
          response.error,
          undefined,
          `${method}: ${JSON.stringify(response.error)}`,
        );
        results[method] = response.result;
      }

      assert.equal(results["kv/set"].version, 1);
      assert.equal(results["kv/batch"].results.length, 2);
      assert.equal(results["kv/get"].value, 1);
      assert.deepEqual(
        results["kv/list"].items.map((item: any) => item.key),
        ["m1", "m2"],
      );
      assert.ok(
        results["kv/namespaces"].items.some(
          (item: any) => item.namespace === `${ns}/sub` && item.keys === 1,
        ),
      );
      assert.equal(results["kv/mget"].items[0].value, 2);
      assert.equal(results["kv/mget"].items[1], null);
      assert.equal(results["kv/delete"].version, 2);
    });

    test("batch answered by id", async () => {
      const batch = [
        {
          jsonrpc: "2.0",
          id: "set",
          method: "kv/set",
          params: { namespace: ns, key: "batch", value: "b" },
        },
        { jsonrpc: "2.0", id: 2, method: "kv/nope" },
        { jsonrpc: "2.0", id: 3, method: "kv/get", params: [ns] },
        {
          jsonrpc: "2.0",
          method: "kv/set",
          params: { namespace: ns, key: "batch-note", value: "n" },
        },
      ];
      const response = jsonBody(await post(JSON.stringify(batch)));
      assert.ok(Array.isArray(response), "expected an array");
      assert.equal(response.length, 3);

      const byId = (id: unknown) =>
        response.find((entry: any) => entry.id === id);
      assert.equal(byId("set").result.version, 1);
      assertErrorResponse(byId(2), -32601, 2);
      assertErrorResponse(byId(3), -32602, 3);

      const note = await getOverHttp("batch-note");
      assert.equal(note.result.value, "n");
    });

    test("notifications only give 204", async () => {
      const single = await post(
        JSON.stringify({
          jsonrpc: "2.0",
          method: "kv/set",
          params: { namespace: ns, key: "note-single", value: 1 },
        }),
      );
      assert.equal(single.status, 204);
      assert.equal(single.body, "");

      const batch = await post(
        JSON.stringify([
          {
            jsonrpc: "2.0",
            method: "kv/set",
            params: { namespace: ns, key: "note-batch", value: 2 },
          },
          { jsonrpc: "2.0", method: "kv/nope" },
        ]),
      );
      assert.equal(batch.status, 204);
      assert.equal(batch.body, "");

      assert.equal((await getOverHttp("note-single")).result.value, 1);
      assert.equal((await getOverHttp("note-batch")).result.value, 2);
    });

    test("watch methods not found", async () => {
      const subscribe = jsonBody(
        await post(requestText("w", "watch/subscribe", { namespace: ns })),
      );
      assertErrorResponse(subscribe, -32601, "w");

      const unsubscribe = jsonBody(
        await post(requestText("u", "watch/unsubscribe", { namespace: ns })),
      );
      assertErrorResponse(unsubscribe, -32601, "u");
    });

    test("JSON-RPC errors answered with 200", async () => {
      const parse = jsonBody(await post("{"));
      assertErrorResponse(parse, -32700, null);

      const empty = jsonBody(await post("[]"));
      assertErrorResponse(empty, -32600, null);

      const tooMany = Array.from({ length: 1001 }, (_, i) => ({
        jsonrpc: "2.0",
        id: i,
        method: "kv/nope",
      }));
      const oversized = jsonBody(await post(JSON.stringify(tooMany)));
      assertErrorResponse(oversized, -32600, null);

      const unknown = jsonBody(await post(requestText(5, "kv/nope", {})));
      assertErrorResponse(unknown, -32601, 5);

      const missing = jsonBody(
        await post(requestText(6, "kv/get", { namespace: ns, key: "absent" })),
      );
      const error = assertErrorResponse(missing, -32004, 6);
      assert.deepEqual(error.data, { namespace: ns, key: "absent" });
    });

    test("bearer scheme compared without case", async () => {
      for (const scheme of ["bearer", "BEARER", "BeArEr"]) {
        const reply = await sendHttp(`${fixture.server.httpUrl}/rpc`, {
          method: "POST",
          headers: {
            authorization: `${scheme} ${fixture.keys.acme.key}`,
            "content-type": "application/json",
          },
          body: requestText(1, "kv/list", { namespace: ns, limit: 1 }),
        });
        const response = jsonBody(reply);
        assert.equal(response.error, undefined, scheme);
      }
    });
  });

  describe("POST /rpc rejections", () => {
    const validBody = requestText(1, "kv/set", {
      namespace: ns,
      key: "unauthorized",
      value: 1,
    });

    /** Asserts an HTTP 401 whose body is the -32003 error. */
    function assertUnauthorized(reply: HttpReply, label: string): void {
      assert.equal(reply.status, 401, label);
      assert.match(
        String(reply.headers["content-type"]),
        /^application\/json\b/i,
        label,
      );
      const body = JSON.parse(reply.body);
      assertErrorResponse(body, -32003, null);
    }

    test("missing or invalid key gives 401", async () => {
      const [, keyId] = /^kvs_([a-z0-9]+)_/.exec(fixture.keys.acme.key) ?? [];
      const authorizations: Array<string | undefined> = [
        undefined,
        "",
        "Bearer",
        "Bearer ",
        `Basic ${Buffer.from(`user:${fixture.keys.acme.key}`).toString("base64")}`,
        `Bearer ${fixture.keys.acme.key}x`,
        `Bearer kvs_${keyId}_wrongsecret`,
        "Bearer kvs_nosuchkey_secret",
        `Token ${fixture.keys.acme.key}`,
      ];
      for (const authorization of authorizations) {
        const headers: Record<string, string> = {
          "content-type": "application/json",
        };
        if (authorization !== undefined) headers.authorization = authorization;
        const reply = await sendHttp(`${fixture.server.httpUrl}/rpc`, {
          method: "POST",
          headers,
          body: validBody,
        });
        assertUnauthorized(
          reply,
          `authorization ${JSON.stringify(authorization)}`,
        );
      }

      const got = await getOverHttp("unauthorized");
      assert.equal(got.error.code, -32004);
    });

    test("key in query string not accepted", async () => {
      const reply = await sendHttp(
        `${fixture.server.httpUrl}/rpc?apiKey=${fixture.keys.acme.key}&key=${fixture.keys.acme.key}`,
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: validBody,
        },
      );
      assertUnauthorized(reply, "query string");
    });

    test("401 whatever the body holds", async () => {
      const bodies: Array<[string, string | Buffer, string | null]> = [
        [
          "oversized",
          Buffer.alloc(maxMessageBytes * 2, 0x20),
          "application/json",
        ],
        ["text/plain", validBody, "text/plain"],
        ["no content type", Buffer.from(validBody), null],
        ["invalid JSON", "{", "application/json"],
        ["empty", "", "application/json"],
      ];
      for (const [label, body, contentType] of bodies) {
        const reply = await postRpc(fixture.server.httpUrl, body, {
          contentType,
        });
        assertUnauthorized(reply, label);
      }

      const chunked = await postRpc(
        fixture.server.httpUrl,
        Buffer.alloc(maxMessageBytes * 2, 0x20),
        { chunked: true },
      );
      assertUnauthorized(chunked, "oversized chunked");
    });

    test("JSON media type variants accepted", async () => {
      const types = [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "APPLICATION/JSON;CHARSET=UTF-8",
      ];
      for (const type of types) {
        const reply = await post(
          requestText(1, "kv/list", { namespace: ns, limit: 1 }),
          type,
        );
        const response = jsonBody(reply);
        assert.equal(response.error, undefined, type);
      }
    });

    test("other media types give 415", async () => {
      const body = requestText(1, "kv/set", {
        namespace: ns,
        key: "media",
        value: 1,
      });
      const types: Array<string | null> = [
        "text/plain",
        "text/plain; charset=utf-8",
        "text/json",
        "application/json-patch+json",
        "application/x-www-form-urlencoded",
        null,
      ];
      for (const type of types) {
        const reply = await post(
          type === null ? Buffer.from(body) : body,
          type,
        );
        assert.equal(reply.status, 415, `content type ${JSON.stringify(type)}`);
      }

      const got = await getOverHttp("media");
      assert.equal(got.error.code, -32004);
    });

    test("media type checked before size", async () => {
      const body = paddedRequest(
        "big",
        "kv/set",
        { namespace: ns, key: "big-text", value: 1 },
        maxMessageBytes + 1,
      );
      const reply = await post(body, "text/plain");
      assert.equal(reply.status, 415);
    });

    test("body size limit", async () => {
      const exact = paddedRequest(
        "exact",
        "kv/set",
        { namespace: ns, key: "exact", value: 1 },
        maxMessageBytes,
      );
      const accepted = jsonBody(await post(exact));
      assert.equal(accepted.error, undefined, JSON.stringify(accepted.error));
      assert.equal(accepted.result.version, 1);

      const over = paddedRequest(
        "over",
        "kv/set",
        { namespace: ns, key: "over", value: 1 },
        maxMessageBytes + 1,
      );
      const rejected = await post(over);
      assert.equal(rejected.status, 413);

      const got = await getOverHttp("over");
      assert.equal(got.error.code, -32004);
    });

    test("chunked body size limit", async () => {
      const send = (body: string) =>
        postRpc(fixture.server.httpUrl, body, {
          apiKey: fixture.keys.acme.key,
          chunked: true,
        });

      const exact = paddedRequest(
        "exact",
        "kv/set",
        { namespace: ns, key: "chunked-exact", value: 1 },
        maxMessageBytes,
      );
      const accepted = jsonBody(await send(exact));
      assert.equal(accepted.error, undefined, JSON.stringify(accepted.error));

      for (const bytes of [maxMessageBytes + 1, maxMessageBytes * 4]) {
        const over = paddedRequest(
          "over",
          "kv/set",
          { namespace: ns, key: "chunked-over", value: 1 },
          bytes,
        );
        const rejected = await send(over);
        assert.equal(rejected.status, 413, `${bytes} bytes`);
      }

      const got = await getOverHttp("chunked-over");
      assert.equal(got.error.code, -32004);
    });

    test("invalid UTF-8 body not executed", async () => {
      const body = Buffer.concat([
        Buffer.from(
          `{"jsonrpc":"2.0","id":1,"method":"kv/set","params":{"namespace":"${ns}","key":"utf8","value":"`,
        ),
        Buffer.from([0xff, 0xfe, 0xc3]),
        Buffer.from('"}}'),
      ]);
      const response = jsonBody(await post(body));
      assertErrorResponse(response, -32700, null);

      const got = await getOverHttp("utf8");
      assert.equal(got.error.code, -32004);
    });
  });

  describe("HTTP endpoints", () => {
    test("healthz and readyz answer 200", async () => {
      const health = await sendHttp(`${fixture.server.httpUrl}/healthz`);
      assert.equal(health.status, 200);

      const ready = await sendHttp(`${fixture.server.httpUrl}/readyz`);
      assert.equal(ready.status, 200);
    });

    test("metrics in Prometheus text format", async () => {
      const secretNamespace = "tenant:acme/metrics-area-q7";
      await post(
        requestText(1, "kv/set", {
          namespace: secretNamespace,
          key: "metrics-key-q7",
          value: 1,
        }),
      );
      await post(
        requestText(2, "kv/get", {
          namespace: secretNamespace,
          key: "nope-q7",
        }),
      );

      const reply = await sendHttp(`${fixture.server.httpUrl}/metrics`);
      assert.equal(reply.status, 200);
      assert.match(String(reply.headers["content-type"]), /^text\/plain\b/);

      const lines = reply.body.split("\n").filter((line) => line.length > 0);
      assert.ok(
        lines.some((line) => line.startsWith("# TYPE ")),
        "no TYPE line",
      );
      const sample =
        /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [^ ]+( -?\d+)?$/;
      for (const line of lines) {
        if (line.startsWith("#")) {
          assert.match(line, /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /);
        } else {
          assert.match(line, sample);
        }
      }

      for (const secret of [
        "acme",
        "metrics-area-q7",
        "metrics-key-q7",
        "nope-q7",
      ]) {
        assert.equal(
          reply.body.includes(secret),
          false,
          `metrics contain ${secret}`,
        );
      }
    });

    test("openrpc.json equals rpc.discover", async () => {
      const reply = await sendHttp(`${fixture.server.httpUrl}/openrpc.json`);
      const document = jsonBody(reply);

      const socket = await TestClient.connect(fixture.server.url, {
        apiKey: fixture.keys.acme.key,
      });
      try {
        const discovered = await socket.call("rpc.discover");
        assert.deepEqual(document, discovered);
      } finally {
        await socket.close();
      }

      const overHttp = jsonBody(await post(requestText("d", "rpc.discover")));
      assert.deepEqual(overHttp.result, document);
    });
  });

  describe("WebSocket upgrade paths", () => {
    test("query string on /stream ignored", async () => {
      const socket = await TestClient.connect(`${fixture.server.url}?x=1`, {
        apiKey: fixture.keys.acme.key,
      });
      try {
        const list = await socket.call("kv/list", { namespace: ns, limit: 1 });
        assert.ok(Array.isArray(list.items));
      } finally {
        await socket.close();
      }
    });

    test("other paths answer 404", async () => {
      const headers = { authorization: `Bearer ${fixture.keys.acme.key}` };
      const ok = await upgradeStatus(
        `${fixture.server.httpUrl}/stream`,
        headers,
      );
      assert.equal(ok, 101);

      for (const path of [
        "/stream/",
        "/other",
        "/streams",
        "/STREAM",
        "/",
        "/rpc",
      ]) {
        const status = await upgradeStatus(
          `${fixture.server.httpUrl}${path}`,
          headers,
        );
        assert.equal(status, 404, `path ${path}`);
      }
    });
  });
});
