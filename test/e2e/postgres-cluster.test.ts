import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  createTestSchema,
  skipWithoutPostgres,
  type TestSchema,
} from "../support/postgres-admin.js";
import { TestClient } from "../support/rpc-client.js";
import {
  createKey,
  revokeKey,
  startServer,
  type CreatedKey,
  type ServerProcess,
} from "../support/server-process.js";
import {
  range,
  seqsOf,
  setPipelined,
  waitForClose,
  type AcknowledgedWrite,
  type Write,
} from "../support/watch-helpers.js";

const writesPerServer = 150;

describe(
  "servers starting on an empty schema",
  {
    skip: skipWithoutPostgres,
  },
  () => {
    let schema: TestSchema;
    let servers: ServerProcess[] = [];

    after(async () => {
      for (const server of servers) await server.stop();
      await schema?.drop();
    });

    test("only one prints a demo key", async () => {
      schema = createTestSchema("demo");
      servers = await Promise.all(
        [1, 2, 3].map(() => startServer({ store: schema.store })),
      );
      const demoKeys = servers
        .map((server) => server.demoKey)
        .filter((key) => key !== undefined);

      assert.equal(demoKeys.length, 1, "one server printed a demo key");
      const client = await TestClient.connect(servers[0].url, {
        apiKey: demoKeys[0],
      });
      try {
        const written = await client.call("kv/set", {
          namespace: "tenant:demo",
          key: "k",
          value: 1,
        });
        assert.equal(written.version, 1, "the demo key works on any server");
      } finally {
        await client.close();
      }
    });
  },
);

describe("two servers on one schema", { skip: skipWithoutPostgres }, () => {
  let schema: TestSchema;
  let service: CreatedKey;
  let servers: ServerProcess[] = [];
  const clients: TestClient[] = [];

  before(async () => {
    schema = createTestSchema("cluster");
    service = await createKey(schema.store, { tenant: "acme" });
    servers = await Promise.all([
      startServer({ store: schema.store }),
      startServer({ store: schema.store }),
    ]);
  });

  after(async () => {
    for (const client of clients) await client.close();
    for (const server of servers) await server.stop();
    await schema?.drop();
  });

  async function connect(server: ServerProcess, apiKey: string) {
    const client = await TestClient.connect(server.url, { apiKey });
    clients.push(client);
    return client;
  }

  test("subscribers see every change once", async () => {
    const subscribers: TestClient[] = [];
    for (const server of servers) {
      for (const namespace of ["tenant:acme", "tenant:acme/w"]) {
        const client = await connect(server, service.key);
        const result = await client.call("watch/subscribe", { namespace });
        assert.equal(result.seq, 0);
        subscribers.push(client);
      }
    }

    const writers = await Promise.all(
      servers.map((server) => connect(server, service.key)),
    );
    const acknowledged: AcknowledgedWrite[] = [];
    await Promise.all(
      writers.map(async (writer, writerIndex) => {
        for (let chunk = 0; chunk < writesPerServer / 50; chunk++) {
          const writes: Write[] = range(1, 50).map((index) => ({
            namespace: "tenant:acme/w",
            key: `k${index % 7}`,
            value: { writer: writerIndex, chunk, index },
          }));
          acknowledged.push(...(await setPipelined(writer, writes)));
        }
      }),
    );
    const total = writesPerServer * servers.length;
    assert.deepEqual(
      acknowledged.map((write) => write.seq).sort((x, y) => x - y),
      range(1, total),
      "the servers hand out every seq once, with no gap",
    );

    const bySeq = new Map(acknowledged.map((write) => [write.seq, write]));
    for (const [index, subscriber] of subscribers.entries()) {
      const changes = await subscriber.waitForChanges(total, 20_000);
      assert.deepEqual(
        seqsOf(changes),
        range(1, total),
        `subscriber ${index} sees each change once, in order`,
      );
      for (const change of changes) {
        const write = bySeq.get(change.seq)!;
        assert.deepEqual(
          [change.key, change.value, change.version],
          [write.key, write.value, write.version],
        );
      }
    }
  });

  test("revocation reaches the other server", async () => {
    const agent = await createKey(schema.store, {
      tenant: "acme",
      role: "agent",
    });
    const watchers = await Promise.all(
      servers.map((server) => connect(server, agent.key)),
    );
    for (const watcher of watchers) {
      await watcher.call("watch/subscribe", { namespace: "tenant:acme" });
    }

    await revokeKey(schema.store, agent.id);
    for (const watcher of watchers) {
      const closed = await waitForClose(watcher, 5_000);
      assert.equal(closed.code, 4401);
    }
  });
});
