import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import {
  ClientErrorCode,
  ErrorCode,
  KvClient,
  connect,
} from "../../src/client/index.js";
import { kvErrorOf, waitForState } from "../support/client-helpers.js";
import {
  createKey,
  createTempStore,
  startServer,
  type CreatedKey,
  type ServerProcess,
  type TempStore,
} from "../support/server-process.js";
import { withTimeout } from "../support/watch-helpers.js";

let store: TempStore;
let server: ServerProcess;
let key: CreatedKey;
const clients: KvClient[] = [];
const namespace = "tenant:acme/encoding";

async function open(): Promise<KvClient> {
  const client = await connect(server.url, { apiKey: key.key });
  clients.push(client);
  return client;
}

before(async () => {
  store = await createTempStore();
  server = await startServer({ store: store.store });
  key = await createKey(store.store, { tenant: "acme" });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

after(async () => {
  await server?.stop();
  await store?.remove();
});

describe("params that JSON cannot carry", () => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  const cases: Array<[string, unknown]> = [
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["nested -Infinity", { a: [1, Number.NEGATIVE_INFINITY] }],
    ["BigInt", 1n],
    ["circular object", circular],
  ];

  for (const [name, value] of cases) {
    it(`${name} value is NotSerializable`, async () => {
      const client = await open();

      const error = await kvErrorOf(
        client.set({ namespace, key: name, value }),
      );
      const missing = await kvErrorOf(client.get({ namespace, key: name }));

      assert.equal(error.code, ClientErrorCode.NotSerializable);
      assert.equal(error.data?.method, "kv/set");
      assert.match(error.message, /cannot be sent as JSON/);
      assert.equal(missing.code, ErrorCode.NotFound);
    });
  }

  it("batch with NaN writes nothing", async () => {
    const client = await open();

    const error = await kvErrorOf(
      client.batch({
        operations: [
          { op: "set", namespace, key: "batch-ok", value: 1 },
          { op: "set", namespace, key: "batch-nan", value: Number.NaN },
        ],
      }),
    );
    const missing = await kvErrorOf(client.get({ namespace, key: "batch-ok" }));

    assert.equal(error.code, ClientErrorCode.NotSerializable);
    assert.equal(missing.code, ErrorCode.NotFound);
  });

  it("BigInt queued while reconnecting", async () => {
    const client = await open();
    await server.kill();
    await waitForState(
      client,
      (state) => state !== "open",
      5_000,
      "waiting for the drop",
    );

    const invalid = kvErrorOf(
      client.set({ namespace, key: "queued-bigint", value: 2n }),
    );
    const valid = client.set({ namespace, key: "queued-valid", value: 2 });
    server = await startServer({
      store: store.store,
      args: ["--port", String(server.port)],
    });
    const written = await withTimeout(valid, 15_000, "the queued write");
    const entry = await client.get({ namespace, key: "queued-valid" });

    assert.equal((await invalid).code, ClientErrorCode.NotSerializable);
    assert.equal(written.version, 1);
    assert.equal(entry.value, 2);
    assert.equal(client.state, "open");
  });
});
