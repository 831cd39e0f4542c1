import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { TestClient, type CloseInfo } from "../support/rpc-client.js";
import { ServerFixture } from "../support/server-fixture.js";
import {
  createKey,
  revokeKey,
  type CreatedKey,
} from "../support/server-process.js";
import { forEachStore } from "../support/stores.js";
import {
  ClientPool,
  delay,
  upgradeHeaders,
  waitForClose,
  waitForSeq,
} from "../support/watch-helpers.js";

forEachStore("authentication", (kind) => {
  // The suite creates its keys lazily, below, so the fixture creates none.
  const fixture = new ServerFixture(kind);
  const pool = new ClientPool();
  const scope = "tenant:acme/user:u1";

  /**
   * Returns a function that creates the key with the CLI on its first call
   * and returns the same key after that. Creating a key takes a noticeable
   * fraction of a second, so tests share these few keys.
   */
  function lazyKey(options: {
    tenant: string;
    role?: "service" | "agent";
    scope?: string;
  }): () => Promise<CreatedKey> {
    let key: Promise<CreatedKey> | undefined;
    return () => {
      key ??= createKey(fixture.store.store, options);
      return key;
    };
  }

  const alphaKey = lazyKey({ tenant: "alpha" });
  const bravoKey = lazyKey({ tenant: "bravo" });
  const acmeKey = lazyKey({ tenant: "acme" });
  const scopedKey = lazyKey({ tenant: "acme", scope });
  const agentKey = lazyKey({ tenant: "acme", role: "agent" });

  async function connectWith(key: CreatedKey): Promise<TestClient> {
    return pool.connect(fixture.server.url, { apiKey: key.key });
  }

  function secretOf(key: CreatedKey): string {
    return key.key.slice(`kvs_${key.id}_`.length);
  }

  // An unauthenticated connection that sends nothing, opened before the
  // other tests so that its 10-second wait for the close overlaps them.
  let idleClient: TestClient;

  before(async () => {
    await fixture.start();
    idleClient = await TestClient.connect(fixture.server.url);
  });

  afterEach(() => pool.closeAll());

  after(async () => {
    idleClient?.socket.terminate();
    await fixture.stop();
  });

  /** One request of every method, aimed at `namespace`. */
  function requestsFor(
    namespace: string,
    storeId: string,
  ): Array<[string, Record<string, unknown>]> {
    return [
      ["kv/get", { namespace, key: "secret" }],
      ["kv/list", { namespace }],
      ["kv/list", { namespace, prefix: "sec" }],
      ["kv/namespaces", { namespace }],
      ["kv/mget", { keys: [{ namespace, key: "secret" }] }],
      ["kv/set", { namespace, key: "secret", value: "overwritten" }],
      ["kv/set", { namespace, key: "secret", value: "overwritten", cas: 1 }],
      ["kv/delete", { namespace, key: "secret" }],
      ["kv/delete", { namespace, key: "secret", cas: 0 }],
      [
        "kv/batch",
        { operations: [{ op: "set", namespace, key: "secret", value: 1 }] },
      ],
      [
        "kv/batch",
        { operations: [{ op: "delete", namespace, key: "secret" }] },
      ],
      ["watch/subscribe", { namespace }],
      ["watch/subscribe", { namespace, fromSeq: 0, storeId }],
      ["watch/subscribe", { namespace, fromSeq: 1_000_000, storeId }],
      ["watch/unsubscribe", { namespace }],
    ];
  }

  describe("tenant isolation", () => {
    it("other tenant unauthorized for every method", async () => {
      const owner = await connectWith(await bravoKey());
      const intruder = await connectWith(await alphaKey());
      await owner.call("kv/set", {
        namespace: "tenant:bravo",
        key: "secret",
        value: 1,
      });
      await owner.call("kv/set", {
        namespace: "tenant:bravo/docs",
        key: "secret",
        value: 2,
      });
      const { storeId } = await owner.call("watch/subscribe", {
        namespace: "tenant:bravo",
      });

      // tenant:bravo exists, with keys and data. tenant:nobody has neither.
      const pairs: Array<[string, string]> = [
        ["tenant:bravo", "tenant:nobody"],
        ["tenant:bravo/docs", "tenant:nobody/docs"],
      ];
      for (const [existing, missing] of pairs) {
        const existingRequests = requestsFor(existing, storeId);
        const missingRequests = requestsFor(missing, storeId);
        for (const [index, [method, params]] of existingRequests.entries()) {
          const label = `${method} ${JSON.stringify(params)}`;

          const existingError = await intruder.callError(method, params);
          const missingError = await intruder.callError(
            method,
            missingRequests[index][1],
          );

          assert.equal(existingError.code, -32003, label);
          assert.deepEqual(missingError, existingError, `same error: ${label}`);
        }
      }

      const sentinel = await owner.call("kv/set", {
        namespace: "tenant:bravo",
        key: "sentinel",
        value: true,
      });
      await waitForSeq(owner, sentinel.seq);
      const stored = await owner.call("kv/mget", {
        keys: [
          { namespace: "tenant:bravo", key: "secret" },
          { namespace: "tenant:bravo/docs", key: "secret" },
        ],
      });

      assert.deepEqual(
        stored.items.map((item: any) => [item.value, item.version]),
        [
          [1, 1],
          [2, 1],
        ],
        "bravo's data is unchanged",
      );
      assert.deepEqual(
        owner.changes.map((change) => change.key),
        ["sentinel"],
        "bravo saw no change from alpha",
      );
    });

    it("mget names the foreign entry", async () => {
      const alpha = await connectWith(await alphaKey());

      const error = await alpha.callError("kv/mget", {
        keys: [
          { namespace: "tenant:alpha", key: "k" },
          { namespace: "tenant:bravo", key: "k" },
        ],
      });

      assert.equal(error.code, -32003);
      assert.equal(error.data?.index, 1);
    });

    it("batch with foreign operation writes nothing", async () => {
      const alpha = await connectWith(await alphaKey());

      const error = await alpha.callError("kv/batch", {
        operations: [
          {
            op: "set",
            namespace: "tenant:alpha",
            key: "batch-probe",
            value: 1,
          },
          {
            op: "set",
            namespace: "tenant:bravo",
            key: "batch-probe",
            value: 1,
          },
        ],
      });
      const probe = await alpha.callError("kv/get", {
        namespace: "tenant:alpha",
        key: "batch-probe",
      });

      assert.equal(error.code, -32003);
      assert.equal(error.data?.index, 1);
      assert.equal(probe.code, -32004);
    });
  });

  describe("scoped key", () => {
    it("reaches its namespace and below", async () => {
      const client = await connectWith(await scopedKey());
      const below = `${scope}/prefs`;

      await client.call("kv/set", { namespace: scope, key: "k", value: 1 });
      await client.call("kv/set", { namespace: below, key: "k", value: 2 });
      const got = await client.call("kv/get", { namespace: below, key: "k" });
      const listed = await client.call("kv/list", { namespace: scope });
      const namespaces = await client.call("kv/namespaces", {
        namespace: scope,
      });
      const fetched = await client.call("kv/mget", {
        keys: [
          { namespace: scope, key: "k" },
          { namespace: below, key: "k" },
        ],
      });
      const batch = await client.call("kv/batch", {
        operations: [{ op: "set", namespace: below, key: "b", value: 3 }],
      });
      const removed = await client.call("kv/delete", {
        namespace: below,
        key: "b",
      });
      const subscribed = await client.call("watch/subscribe", {
        namespace: below,
      });
      const unsubscribed = await client.call("watch/unsubscribe", {
        namespace: below,
      });

      assert.equal(got.value, 2);
      assert.deepEqual(
        listed.items.map((item: any) => item.key),
        ["k"],
      );
      assert.deepEqual(namespaces.items, [
        { namespace: scope, keys: 1 },
        { namespace: below, keys: 1 },
      ]);
      assert.deepEqual(
        fetched.items.map((item: any) => item.value),
        [1, 2],
      );
      assert.equal(batch.results.length, 1);
      assert.equal(removed.key, "b");
      assert.equal(subscribed.namespace, below);
      assert.equal(unsubscribed.unsubscribed, true);
    });

    it("rejected outside its scope", async () => {
      const client = await connectWith(await scopedKey());
      const { storeId } = await client.call("watch/subscribe", {
        namespace: scope,
      });

      const outside = [
        "tenant:acme/user:u10",
        "tenant:acme/user:u10/prefs",
        "tenant:acme/user",
        "tenant:acme",
        "tenant:acme/user:u2/user:u1",
      ];
      for (const namespace of outside) {
        for (const [method, params] of requestsFor(namespace, storeId)) {
          const error = await client.callError(method, params);

          assert.equal(
            error.code,
            -32003,
            `${method} ${JSON.stringify(params)}`,
          );
        }
      }
    });

    it("namespaces above the scope rejected", async () => {
      const client = await connectWith(await scopedKey());

      const error = await client.callError("kv/namespaces", {
        namespace: "tenant:acme",
      });

      assert.equal(error.code, -32003);
    });

    it("watch sees only its scope", async () => {
      const watcher = await connectWith(await scopedKey());
      const writer = await connectWith(await acmeKey());
      await watcher.call("watch/subscribe", { namespace: scope });

      for (const namespace of [
        "tenant:acme/user:u10",
        "tenant:acme",
        `${scope}/x`,
      ]) {
        await writer.call("kv/set", {
          namespace,
          key: "watched",
          value: namespace,
        });
      }
      const sentinel = await writer.call("kv/set", {
        namespace: scope,
        key: "watched",
        value: "sentinel",
      });
      await waitForSeq(watcher, sentinel.seq);

      assert.deepEqual(
        watcher.changes.map((change) => change.namespace),
        [`${scope}/x`, scope],
      );
    });
  });

  describe("agent key", () => {
    const root = "tenant:acme/agency";

    it("reads and watches", async () => {
      const writer = await connectWith(await acmeKey());
      const agent = await connectWith(await agentKey());
      await writer.call("kv/set", {
        namespace: root,
        key: "memory",
        value: "v1",
      });
      const subscribed = await agent.call("watch/subscribe", {
        namespace: root,
      });

      const got = await agent.call("kv/get", {
        namespace: root,
        key: "memory",
      });
      const listed = await agent.call("kv/list", { namespace: root });
      const namespaces = await agent.call("kv/namespaces", { namespace: root });
      const fetched = await agent.call("kv/mget", {
        keys: [{ namespace: root, key: "memory" }],
      });
      const written = await writer.call("kv/set", {
        namespace: root,
        key: "memory",
        value: "v2",
      });
      await waitForSeq(agent, written.seq);

      assert.equal(subscribed.namespace, root);
      assert.equal(got.value, "v1");
      assert.ok(listed.items.some((item: any) => item.key === "memory"));
      assert.ok(namespaces.items.some((item: any) => item.namespace === root));
      assert.equal(fetched.items[0].value, "v1");
      assert.equal(agent.changes.at(-1)?.value, "v2");
    });

    it("write methods are read-only", async () => {
      const agent = await connectWith(await agentKey());
      const writes: Array<[string, Record<string, unknown>]> = [
        ["kv/set", { namespace: root, key: "agent-write", value: 1 }],
        ["kv/delete", { namespace: root, key: "memory" }],
        [
          "kv/batch",
          {
            operations: [
              { op: "set", namespace: root, key: "agent-write", value: 1 },
            ],
          },
        ],
        // Read Only is checked before the params and the namespace.
        ["kv/set", {}],
        ["kv/delete", { namespace: root }],
        ["kv/batch", { operations: [] }],
        ["kv/set", { namespace: "tenant:other", key: "k", value: 1 }],
      ];

      for (const [method, params] of writes) {
        const error = await agent.callError(method, params);

        assert.equal(error.code, -32005, `${method} ${JSON.stringify(params)}`);
      }
      const probe = await agent.callError("kv/get", {
        namespace: root,
        key: "agent-write",
      });
      assert.equal(probe.code, -32004, "nothing was written");
    });
  });

  describe("unauthenticated connection", () => {
    const cases: Array<{
      name: string;
      connect: () => Promise<TestClient>;
    }> = [
      {
        name: "connection without key",
        connect: () => pool.connect(fixture.server.url),
      },
      {
        name: "connection with wrong secret",
        connect: async () => {
          const { id } = await acmeKey();
          return pool.connect(fixture.server.url, {
            apiKey: `kvs_${id}_wrongsecret`,
          });
        },
      },
      {
        name: "connection with unknown key",
        connect: () =>
          pool.connect(fixture.server.url, {
            apiKey: "kvs_nosuchkey_AAAAAAAAAAAAAAAA",
          }),
      },
      {
        name: "connection with Basic scheme",
        connect: async () => {
          const { key } = await acmeKey();
          return pool.connect(fixture.server.url, {
            headers: { authorization: `Basic ${key}` },
          });
        },
      },
      {
        name: "key in query string",
        connect: async () => {
          const { key } = await acmeKey();
          const query = ["apiKey", "api_key", "key", "token", "access_token"]
            .map((name) => `${name}=${key}`)
            .join("&");
          return pool.connect(`${fixture.server.url}?${query}`);
        },
      },
    ];

    for (const { name, connect } of cases) {
      it(`${name} gets -32003 then 4401`, async () => {
        const writer = await connectWith(await acmeKey());
        const client = await connect();
        const namespace = "tenant:acme/unauthenticated";
        const requests: Array<[string, unknown]> = [
          ["kv/get", { namespace, key: "probe" }],
          ["kv/set", { namespace, key: "probe", value: 1 }],
          ["kv/list", { namespace }],
          ["kv/namespaces", { namespace }],
          ["kv/mget", { keys: [{ namespace, key: "probe" }] }],
          ["kv/delete", { namespace, key: "probe" }],
          [
            "kv/batch",
            { operations: [{ op: "set", namespace, key: "probe", value: 1 }] },
          ],
          ["watch/subscribe", { namespace }],
          ["watch/unsubscribe", { namespace }],
          ["no/such-method", {}],
          ["rpc.discover", undefined],
          ["kv/get", { namespace: "not a namespace" }],
          ["kv/set", []],
          ["kv/get", { namespace: "tenant:nobody", key: "k" }],
          ["kv/list", { namespace }],
        ];

        const responses = await Promise.all(
          requests.map(([method, params]) => client.request(method, params)),
        );
        // Had the subscribe above worked, this change would be queued on the
        // connection before its close.
        await writer.call("kv/set", { namespace, key: "after", value: 1 });
        const stillOpen = client.socket.readyState === client.socket.OPEN;
        client.sendRaw(
          JSON.stringify({
            jsonrpc: "2.0",
            id: "16th",
            method: "kv/list",
            params: { namespace },
          }),
        );
        const close = await waitForClose(client, 5_000);
        const probe = await writer
          .call("kv/get", { namespace, key: "probe" })
          .catch((error) => error.rpc);

        for (const [index, response] of responses.entries()) {
          assert.equal(
            response.error?.code,
            -32003,
            `${requests[index][0]} gets -32003`,
          );
        }
        assert.ok(stillOpen, "open after 15 frames");
        assert.equal(close.code, 4401);
        assert.equal(
          client.received.some((frame) => frame.method === "watch/change"),
          false,
          "no notification on an unauthenticated connection",
        );
        assert.equal(
          probe.code,
          -32004,
          "the unauthenticated kv/set wrote nothing",
        );
      });
    }

    it(
      "idle unauthenticated closed after 10 s",
      { timeout: 30_000 },
      async () => {
        // The server closes an unauthenticated connection after 10 seconds
        // even when it sends nothing. Wait twice as long before failing.
        const close = await waitForClose(idleClient, 20_000);

        assert.equal(close.code, 4401);
      },
    );
  });

  describe("authorization header", () => {
    it("scheme compared without case", async () => {
      const key = await alphaKey();

      for (const scheme of ["bearer", "BEARER", "bEaReR"]) {
        const client = await pool.connect(fixture.server.url, {
          headers: { authorization: `${scheme} ${key.key}` },
        });
        const response = await client.request("kv/set", {
          namespace: "tenant:alpha/header-case",
          key: scheme,
          value: 1,
        });

        assert.equal(response.error, undefined, `scheme ${scheme}`);
        assert.equal(response.result.updatedBy, key.id, `scheme ${scheme}`);
      }
    });

    it("bearer subprotocol authenticates", async () => {
      const key = await alphaKey();
      const protocols = ["kvstream.v1", `bearer.${key.key}`];

      const client = await pool.connect(fixture.server.url, { protocols });
      const written = await client.call("kv/set", {
        namespace: "tenant:alpha/browser",
        key: "k",
        value: 1,
      });
      const headers = await upgradeHeaders(fixture.server.url, protocols);

      assert.equal(client.socket.protocol, "kvstream.v1");
      assert.equal(written.updatedBy, key.id);
      assert.equal(headers["sec-websocket-protocol"], "kvstream.v1");
      assert.equal(JSON.stringify(headers).includes(secretOf(key)), false);
    });

    it("invalid subprotocol token never echoed", async () => {
      const token = "kvs_nosuchkey_BBBBBBBBBBBBBBBBBBBB";
      const protocols = ["kvstream.v1", `bearer.${token}`];

      const client = await pool.connect(fixture.server.url, { protocols });
      const error = await client.callError("kv/get", {
        namespace: "tenant:alpha/browser",
        key: "k",
      });
      const headers = await upgradeHeaders(fixture.server.url, protocols);

      assert.equal(client.socket.protocol, "kvstream.v1");
      assert.equal(error.code, -32003);
      assert.equal(headers["sec-websocket-protocol"], "kvstream.v1");
      assert.equal(
        JSON.stringify(headers).includes("BBBBBBBBBBBBBBBBBBBB"),
        false,
      );
    });

    it("invalid header overrides valid subprotocol", async () => {
      const key = await alphaKey();
      const protocols = ["kvstream.v1", `bearer.${key.key}`];

      for (const authorization of [
        "Bearer kvs_nosuchkey_CCCCCCCCCCCCCCCC",
        `Basic ${key.key}`,
        "Bearer",
      ]) {
        const client = await pool.connect(fixture.server.url, {
          protocols,
          headers: { authorization },
        });
        const error = await client.callError("kv/get", {
          namespace: "tenant:alpha/browser",
          key: "k",
        });

        assert.equal(error.code, -32003, `Authorization: ${authorization}`);
      }
    });
  });

  describe("revoked key", { timeout: 30_000 }, () => {
    const root = "tenant:acme/revoked";
    const namespace = root;
    let revoked: CreatedKey;
    // These connections outlive single tests, so they are not in the pool.
    const clients: TestClient[] = [];
    let watcher: TestClient;
    let requester: TestClient;
    let writer: TestClient;
    let watcherClose: CloseInfo | undefined;
    let requesterClose: CloseInfo | undefined;

    before(async () => {
      revoked = await createKey(fixture.store.store, {
        tenant: "acme",
        name: "revoked",
      });
      const other = await acmeKey();
      for (const key of [revoked, revoked, other]) {
        clients.push(
          await TestClient.connect(fixture.server.url, { apiKey: key.key }),
        );
      }
      [watcher, requester, writer] = clients;
      await watcher.call("watch/subscribe", { namespace });
      await writer.call("watch/subscribe", { namespace });
      const first = await writer.call("kv/set", {
        namespace,
        key: "k",
        value: 0,
      });
      await waitForSeq(watcher, first.seq);
      await requester.call("kv/get", { namespace, key: "k" });

      await revokeKey(fixture.store.store, revoked.id);
      // From here on the watcher sends nothing, the requester sends kv/get
      // every 25 ms, and the writer keeps writing, so that the watcher's
      // subscription would have something to deliver.
      const settle = (close: Promise<CloseInfo>) =>
        close.then(
          (info) => info,
          () => undefined,
        );
      const watcherClosed = settle(waitForClose(watcher, 5_000));
      const requesterClosed = settle(waitForClose(requester, 5_000));
      let bothClosed = false;
      void Promise.all([watcherClosed, requesterClosed]).then(() => {
        bothClosed = true;
      });
      for (let id = 1; !bothClosed && id <= 400; id++) {
        requester.sendRaw(
          JSON.stringify({
            jsonrpc: "2.0",
            id,
            method: "kv/get",
            params: { namespace, key: "k" },
          }),
        );
        if (id % 2 === 0) {
          await writer.call("kv/set", { namespace, key: "k", value: id });
        }
        await delay(25);
      }
      watcherClose = await watcherClosed;
      requesterClose = await requesterClosed;
    });

    after(() => {
      for (const client of clients) client.socket.terminate();
    });

    it("idle watcher closed with 4401", async () => {
      const changesBeforeClose = watcher.changes.length;
      const later = await writer.call("kv/set", {
        namespace,
        key: "k",
        value: "after close",
      });
      await waitForSeq(writer, later.seq);

      assert.equal(watcherClose?.code, 4401);
      assert.equal(
        watcher.changes.length,
        changesBeforeClose,
        "no change after the close",
      );
    });

    it("requests after revocation get -32003", () => {
      const outcomes = requester.received
        .filter((frame) => typeof frame.id === "number" && frame.id > 0)
        .map((frame) => (frame.error ? frame.error.code : "ok"));
      const firstRejected = outcomes.indexOf(-32003);

      assert.equal(requesterClose?.code, 4401);
      assert.deepEqual(
        outcomes.filter((outcome) => outcome !== "ok" && outcome !== -32003),
        [],
        "every response is a result or -32003",
      );
      if (firstRejected >= 0) {
        assert.deepEqual(
          outcomes.slice(firstRejected).filter((outcome) => outcome === "ok"),
          [],
          "no request succeeds after the first -32003",
        );
      }
    });

    it("new connection gets -32003", async () => {
      const client = await connectWith(revoked);

      const errors = [
        await client.callError("kv/get", { namespace, key: "k" }),
        await client.callError("kv/set", { namespace, key: "k", value: 1 }),
        await client.callError("watch/subscribe", { namespace }),
      ];

      for (const error of errors) {
        assert.equal(error.code, -32003);
      }
    });

    it("other keys of the tenant unaffected", async () => {
      const written = await writer.call("kv/set", {
        namespace,
        key: "k",
        value: "still writing",
      });
      await waitForSeq(writer, written.seq);

      assert.equal(writer.socket.readyState, writer.socket.OPEN);
      assert.equal(writer.changes.at(-1)?.seq, written.seq);
    });
  });

  describe("key created while running", () => {
    it("works at once", async () => {
      const created = await createKey(fixture.store.store, {
        tenant: "fresh-key",
      });

      const client = await connectWith(created);
      const written = await client.call("kv/set", {
        namespace: "tenant:fresh-key",
        key: "k",
        value: 1,
      });

      assert.equal(written.version, 1);
      assert.equal(written.updatedBy, created.id);
    });
  });
});
