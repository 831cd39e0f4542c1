import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { TestClient } from "../support/rpc-client.js";
import {
  createKey,
  createTempStore,
  startServer,
  type ServerProcess,
  type TempStore,
} from "../support/server-process.js";
import {
  range,
  runCliBounded,
  seqsOf,
  setPipelined,
  waitForClose,
  waitForSeq,
  withTimeout,
  type AcknowledgedWrite,
} from "../support/watch-helpers.js";

// Each test restarts or kills servers on its own store file, so the
// servers, stores and clients of one test are tracked here and released
// after it, whatever state the test left them in.
const servers: ServerProcess[] = [];
const stores: TempStore[] = [];
const clients: TestClient[] = [];

async function newStore(): Promise<TempStore> {
  const store = await createTempStore();
  stores.push(store);
  return store;
}

async function serve(store: TempStore): Promise<ServerProcess> {
  const server = await startServer({ store: store.store });
  servers.push(server);
  return server;
}

async function connect(
  server: ServerProcess,
  key: string,
): Promise<TestClient> {
  const client = await TestClient.connect(server.url, { apiKey: key });
  clients.push(client);
  return client;
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.terminate();
  for (const server of servers.splice(0)) await server.kill();
  for (const store of stores.splice(0)) await store.remove();
});

describe("durability on SQLite", () => {
  it("acknowledged writes survive kill -9", { timeout: 60_000 }, async () => {
    const tenant = "durable";
    const store = await newStore();
    const first = await serve(store);
    const { key } = await createKey(store.store, { tenant });
    const connectionCount = 4;
    const writesPerConnection = 250;
    const keysPerConnection = 125;
    const total = connectionCount * writesPerConnection;
    const writers = await Promise.all(
      range(1, connectionCount).map(() => connect(first, key)),
    );
    const probe = await connect(first, key);
    const { storeId } = await probe.call("watch/subscribe", {
      namespace: `tenant:${tenant}`,
    });

    // Each connection writes each of its keys twice, pipelined, so every
    // key ends at version 2.
    const acksPerConnection = await Promise.all(
      writers.map((writer, w) =>
        setPipelined(
          writer,
          range(0, writesPerConnection - 1).map((n) => ({
            namespace: `tenant:${tenant}/c${w}`,
            key: `k${n % keysPerConnection}`,
            value: { w, n },
          })),
        ),
      ),
    );
    const acks = acksPerConnection.flat();
    const lastSeq = Math.max(...acks.map((ack) => ack.seq));
    await first.kill();
    const second = await serve(store);
    const reader = await connect(second, key);

    const latest = new Map<string, AcknowledgedWrite>();
    for (const ack of acks) latest.set(`${ack.namespace}\n${ack.key}`, ack);
    const expected = [...latest.values()];
    const stored = await reader.call("kv/mget", {
      keys: expected.map(({ namespace, key: name }) => ({
        namespace,
        key: name,
      })),
    });
    const subscribed = await reader.call("watch/subscribe", {
      namespace: `tenant:${tenant}`,
      fromSeq: 0,
      storeId,
    });
    await waitForSeq(reader, lastSeq, 20_000);
    const next = await reader.call("kv/set", {
      namespace: `tenant:${tenant}`,
      key: "after-restart",
      value: true,
    });

    assert.deepEqual(
      acks.map((ack) => ack.seq).sort((a, b) => a - b),
      range(1, total),
      "acknowledged seqs are gapless",
    );
    assert.equal(expected.length, connectionCount * keysPerConnection);
    assert.ok(
      expected.every((ack) => ack.version === 2),
      "each key was acknowledged at version 2",
    );
    const lost = stored.items
      .map((item: any, index: number) => ({ item, ack: expected[index] }))
      .filter(
        ({ item, ack }: { item: any; ack: AcknowledgedWrite }) =>
          item === null ||
          item.version !== ack.version ||
          JSON.stringify(item.value) !== JSON.stringify(ack.value) ||
          item.updatedAt !== ack.updatedAt,
      );
    assert.deepEqual(lost, [], "every key holds its last acknowledged write");
    assert.equal(subscribed.seq, lastSeq, "subscribe returns the last seq");
    assert.equal(subscribed.storeId, storeId, "storeId survives a restart");
    const replayed = reader.changes.filter((change) => change.seq <= lastSeq);
    assert.deepEqual(seqsOf(replayed), range(1, lastSeq), "history survives");
    const bySeq = new Map(acks.map((ack) => [ack.seq, ack]));
    const differing = replayed.filter((change) => {
      const ack = bySeq.get(change.seq)!;
      return (
        change.namespace !== ack.namespace ||
        change.key !== ack.key ||
        change.version !== ack.version ||
        JSON.stringify(change.value) !== JSON.stringify(ack.value)
      );
    });
    assert.deepEqual(
      differing,
      [],
      "every acknowledged write is in the history",
    );
    assert.equal(next.seq, lastSeq + 1, "seq continues without a gap");
  });

  it("second serve on same file fails", { timeout: 60_000 }, async () => {
    const store = await newStore();
    const first = await serve(store);
    const { key } = await createKey(store.store, { tenant: "lock" });
    const client = await connect(first, key);
    await client.call("kv/set", {
      namespace: "tenant:lock",
      key: "k",
      value: 1,
    });

    const rejected = await runCliBounded(
      ["serve", "--host", "127.0.0.1", "--port", "0", "--store", store.store],
      15_000,
    );
    const stillServing = await client.call("kv/set", {
      namespace: "tenant:lock",
      key: "k",
      value: 2,
    });
    const firstExit = await withTimeout(
      first.stop(),
      10_000,
      "stopping the first server",
    );
    const second = await serve(store);
    const reader = await connect(second, key);
    const stored = await reader.call("kv/get", {
      namespace: "tenant:lock",
      key: "k",
    });

    assert.equal(rejected.listened, false, "the second server did not listen");
    assert.equal(
      rejected.timedOut,
      false,
      "the second server exited by itself",
    );
    assert.notEqual(rejected.code, 0);
    assert.notEqual(rejected.code, null);
    assert.match(rejected.stderr, /another|in use|locked|already/i);
    assert.equal(stillServing.version, 2, "the first server kept serving");
    assert.equal(firstExit, 0);
    assert.equal(
      stored.value,
      2,
      "the second server starts once the first stopped",
    );
  });

  it("SIGTERM exits 0 and closes 1001", { timeout: 30_000 }, async () => {
    const store = await newStore();
    const server = await serve(store);
    const { key } = await createKey(store.store, { tenant: "shutdown" });
    const watcher = await connect(server, key);
    const idle = await connect(server, key);
    await watcher.call("watch/subscribe", { namespace: "tenant:shutdown" });

    const exitCode = await withTimeout(
      server.stop(),
      10_000,
      "stopping the server",
    );
    const watcherClose = await waitForClose(watcher, 5_000);
    const idleClose = await waitForClose(idle, 5_000);

    assert.equal(exitCode, 0);
    assert.equal(watcherClose.code, 1001);
    assert.equal(idleClose.code, 1001);
  });
});
