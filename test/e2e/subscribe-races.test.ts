import assert from "node:assert/strict";
import { test } from "node:test";

import { TestClient } from "../support/rpc-client.js";
import { useServerFixture } from "../support/server-fixture.js";
import { forEachStore } from "../support/stores.js";
import {
  expectedSeqs,
  routeNotifications,
  routeOnceComplete,
  subscribeRequest,
  type CommittedChange,
  type RoutedSubscription,
} from "../support/subscription-routing.js";

/** Sends requests in one text frame as a JSON-RPC batch. */
function sendBatch(
  client: TestClient,
  requests: Array<{ method: string; params: unknown }>,
  firstId: number,
): Promise<any[]> {
  const batch = requests.map((request, index) => ({
    jsonrpc: "2.0",
    id: firstId + index,
    ...request,
  }));
  const reply = client.waitFor(() =>
    client.received.some((frame) => Array.isArray(frame)),
  );
  client.sendRaw(JSON.stringify(batch));
  return reply.then(() => {
    const frame: any[] = client.received.find((item) => Array.isArray(item))!;
    return [...frame].sort((a, b) => a.id - b.id);
  });
}

forEachStore("subscriptions sent together", (kind) => {
  const fixture = useServerFixture(kind, {
    keys: { acme: { tenant: "acme" } },
  });

  test("cap holds within one batch", async () => {
    const client = await fixture.connect("acme");
    const requests = Array.from({ length: 70 }, (_, index) => ({
      method: "watch/subscribe",
      params: { namespace: `tenant:acme/cap/n${index}` },
    }));
    const responses = await sendBatch(client, requests, 1);

    const accepted = responses.filter((response) => response.result);
    const refused = responses.filter((response) => response.error);
    assert.equal(accepted.length, 64);
    assert.equal(refused.length, 6);
    for (const response of refused) {
      assert.equal(response.error.code, -32007);
      assert.deepEqual(response.error.data, { limit: 64 });
    }
    await client.close();
  });

  test("duplicate fromSeq subscribe refused", async () => {
    const writer = await fixture.connect("acme");
    const namespace = "tenant:acme/dup";
    for (let index = 0; index < 5; index++) {
      await writer.call("kv/set", {
        namespace,
        key: `k${index}`,
        value: index,
      });
    }
    const client = await fixture.connect("acme");
    const request = {
      method: "watch/subscribe",
      params: { namespace, fromSeq: 0 },
    };
    const [first, second] = await sendBatch(client, [request, request], 1);

    assert.ok(first.result, JSON.stringify(first));
    assert.equal(second.error?.code, -32602);
    await client.waitForChanges(5);
    await client.call("kv/get", { namespace, key: "k0" });
    const seqs = client.changes.map((change) => change.seq);
    assert.equal(new Set(seqs).size, seqs.length);
    await client.close();
    await writer.close();
  });

  test("storeId checked on resubscribe", async () => {
    const client = await fixture.connect("acme");
    const namespace = "tenant:acme/resubscribe";
    await client.call("watch/subscribe", { namespace });

    const error = await client.callError("watch/subscribe", {
      namespace,
      storeId: "not-this-store",
    });
    assert.equal(error.code, -32006);
    assert.equal(typeof error.data.storeId, "string");
    await client.close();
  });

  test("unsubscribe waits for earlier subscribe", async () => {
    const client = await fixture.connect("acme");
    const namespace = "tenant:acme/ordered";
    const [subscribed, unsubscribed] = await sendBatch(
      client,
      [
        { method: "watch/subscribe", params: { namespace, fromSeq: 0 } },
        { method: "watch/unsubscribe", params: { namespace } },
      ],
      1,
    );
    assert.ok(subscribed.result);
    assert.equal(unsubscribed.result.unsubscribed, true);
    await client.close();
  });
});

/**
 * Writes `count` changes of `value` under `root`, to `root/a` and `root/b`
 * in turn, one after the other, and returns them in seq order.
 */
async function writeHistory(
  writer: TestClient,
  root: string,
  count: number,
  value: unknown,
): Promise<CommittedChange[]> {
  const writes: CommittedChange[] = [];
  for (let index = 0; index < count; index++) {
    const namespace = index % 2 ? `${root}/b` : `${root}/a`;
    const { seq } = await writer.call("kv/set", {
      namespace,
      key: `k${index}`,
      value,
    });
    writes.push({ namespace, seq });
  }
  return writes;
}

/**
 * Asserts that every subscription of `client`, routed by the client rule,
 * took exactly its expected seqs.
 */
async function assertDelivered(
  client: TestClient,
  subscriptions: RoutedSubscription[],
  expected: Map<string, number[]>,
): Promise<void> {
  const routed = await routeOnceComplete(client, subscriptions, expected);
  for (const [namespace, seqs] of expected) {
    assert.deepEqual(routed.get(namespace), seqs, namespace);
  }
}

/** Returns the entries of the first batch response the client received. */
async function batchResponse(client: TestClient): Promise<any[]> {
  await client.waitFor(() => client.received.some(Array.isArray));
  return client.received.find(Array.isArray)!;
}

function resultOf(batch: any[], id: number): any {
  const response = batch.find((item) => item.id === id);
  assert.ok(response?.result, JSON.stringify(response));
  return response.result;
}

function setRequest(
  id: number,
  namespace: string,
  key: string,
  value: unknown,
) {
  return {
    jsonrpc: "2.0",
    id,
    method: "kv/set",
    params: { namespace, key, value },
  };
}

/**
 * Rounds of the cases whose loss depends on timing. Each round uses a new
 * namespace, and one round alone may pass on a faulty server.
 */
const rounds = 3;

forEachStore("overlapping replays", (kind) => {
  const fixture = useServerFixture(kind, {
    keys: { acme: { tenant: "acme" } },
  });
  const value = "r".repeat(20_000);

  /** A narrow and a broad subscription under `root`, both from seq 0. */
  const replayingPair = (root: string): RoutedSubscription[] => [
    { namespace: `${root}/a`, requestId: 1001, fromSeq: 0 },
    { namespace: root, requestId: 1002, fromSeq: 0 },
  ];

  /** A live narrow subscription and a broad one from seq 0. */
  const livePair = (root: string): RoutedSubscription[] => [
    { namespace: `${root}/a`, requestId: 1001 },
    { namespace: root, requestId: 1002, fromSeq: 0 },
  ];

  /**
   * Writes 200 changes under `root`, then sends the two subscribes in one
   * batch with a kv/set to `writeNamespace` between them, and checks what
   * each subscription takes.
   */
  async function checkWriteBetween(
    root: string,
    subscriptions: RoutedSubscription[],
    writeNamespace: string,
  ): Promise<void> {
    const writer = await fixture.connect("acme");
    const writes = await writeHistory(writer, root, 200, value);

    const reader = await fixture.connect("acme");
    reader.sendRaw(
      JSON.stringify([
        subscribeRequest(subscriptions[0]),
        setRequest(1003, writeNamespace, "between", 1),
        subscribeRequest(subscriptions[1]),
      ]),
    );
    const batch = await batchResponse(reader);
    writes.push({ namespace: writeNamespace, seq: resultOf(batch, 1003).seq });

    const expected = expectedSeqs(writes, subscriptions, batch);
    await assertDelivered(reader, subscriptions, expected);
    await reader.close();
    await writer.close();
  }

  test("batch, narrow then broad, loses nothing", async () => {
    const writer = await fixture.connect("acme");
    for (let round = 0; round < rounds; round++) {
      const root = `tenant:acme/batch${round}`;
      const writes = await writeHistory(writer, root, 200, value);

      const reader = await fixture.connect("acme");
      const subscriptions = replayingPair(root);
      reader.sendRaw(JSON.stringify(subscriptions.map(subscribeRequest)));

      const expected = expectedSeqs(writes, subscriptions);
      await assertDelivered(reader, subscriptions, expected);
      await reader.close();
    }
    await writer.close();
  });

  // The narrow replay runs while the write commits, before the broad
  // subscription registers.
  test("write between batched subscribes", () => {
    const root = "tenant:acme/write-between";
    return checkWriteBetween(root, replayingPair(root), `${root}/c`);
  });

  // The write's change matches the live narrow subscription, which has no
  // replay, before the broad subscription registers.
  test("live change between batched subscribes", () => {
    const root = "tenant:acme/live-between";
    return checkWriteBetween(root, livePair(root), `${root}/a`);
  });

  test("pipelined subscribes lose nothing", async () => {
    const writer = await fixture.connect("acme");
    const { storeId } = await writer.call("watch/subscribe", {
      namespace: "tenant:acme/store-id",
    });
    for (let round = 0; round < rounds; round++) {
      const root = `tenant:acme/pipelined${round}`;
      const writes = await writeHistory(writer, root, 200, value);

      // Subscribes with a storeId each read the store once and queue no
      // replay. Sent between the two, they keep the broad subscribe, which
      // has already started, waiting while the narrow replay runs.
      const reader = await fixture.connect("acme");
      const subscriptions = replayingPair(root);
      const spacers = Array.from({ length: 5 }, (_, index) => ({
        jsonrpc: "2.0",
        id: 2000 + index,
        method: "watch/subscribe",
        params: { namespace: `${root}/spacer${index}`, storeId },
      }));
      const frames = [
        subscribeRequest(subscriptions[0]),
        ...spacers,
        subscribeRequest(subscriptions[1]),
      ];
      for (const frame of frames) reader.sendRaw(JSON.stringify(frame));

      const expected = expectedSeqs(writes, subscriptions);
      await assertDelivered(reader, subscriptions, expected);
      await reader.close();
    }
    await writer.close();
  });

  test("live writes during subscribes lose nothing", async () => {
    const writer = await fixture.connect("acme");
    for (let round = 0; round < rounds; round++) {
      const root = `tenant:acme/live${round}`;
      const writes = await writeHistory(writer, root, 100, value);

      // Four writers in parallel keep commits coming while the reader
      // subscribes. The subscribe batch is sent once 20 have landed.
      const reader = await fixture.connect("acme");
      const liveWrites = 200;
      let landed = 0;
      let onTwentyLanded!: () => void;
      const twentyLanded = new Promise<void>((resolve) => {
        onTwentyLanded = resolve;
      });
      const writing = Promise.all(
        Array.from({ length: 4 }, async (_, lane) => {
          for (let index = lane; index < liveWrites; index += 4) {
            const namespace = index % 2 ? `${root}/b` : `${root}/a`;
            const { seq } = await writer.call("kv/set", {
              namespace,
              key: `live${index}`,
              value: index,
            });
            writes.push({ namespace, seq });
            if (++landed === 20) onTwentyLanded();
          }
        }),
      );
      await twentyLanded;

      // Reads between the two subscribes keep the broad one from
      // registering for a while, during which live changes arrive for the
      // narrow one, which has no replay.
      const subscriptions = livePair(root);
      const reads = Array.from({ length: 20 }, (_, index) => ({
        jsonrpc: "2.0",
        id: 2000 + index,
        method: "kv/get",
        params: { namespace: `${root}/a`, key: "k0" },
      }));
      reader.sendRaw(
        JSON.stringify([
          subscribeRequest(subscriptions[0]),
          ...reads,
          subscribeRequest(subscriptions[1]),
        ]),
      );
      const batch = await batchResponse(reader);
      await writing;

      const expected = expectedSeqs(writes, subscriptions, batch);
      await assertDelivered(reader, subscriptions, expected);
      await reader.close();
    }
    await writer.close();
  });
});

forEachStore("replay of large history", (kind) => {
  const fixture = useServerFixture(kind, {
    keys: { acme: { tenant: "acme" } },
    args: ["--max-outbound-bytes", String(1024 * 1024)],
  });

  test("paced replay never trips 4008", async () => {
    const namespace = "tenant:acme/large";
    const writer = await fixture.connect("acme");
    const value = "v".repeat(60_000);
    // 120 changes of 60 KB: about 7 times the outbound limit.
    for (let round = 0; round < 12; round++) {
      await Promise.all(
        Array.from({ length: 10 }, (_, index) =>
          writer.call("kv/set", {
            namespace,
            key: `k${round * 10 + index}`,
            value,
          }),
        ),
      );
    }

    const reader = await fixture.connect("acme");
    const subscribed = await reader.call("watch/subscribe", {
      namespace,
      fromSeq: 0,
    });
    // Small live writes keep arriving while the replay runs.
    for (let index = 0; index < 20; index++) {
      await writer.call("kv/set", { namespace, key: "live", value: index });
    }

    const expected = subscribed.seq + 20;
    await reader.waitForChanges(expected, 20_000);
    const seqs = reader.changes.map((change) => change.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: expected }, (_, index) => index + 1),
    );
    assert.equal(reader.socket.readyState, reader.socket.OPEN);
    await reader.close();
    await writer.close();
  });

  test("writes past the limit in a subscribe batch", async () => {
    const namespace = "tenant:acme/held";
    const reader = await fixture.connect("acme");
    // Notifications wait while the batch runs. Past half the 1 MiB limit,
    // the rest of the 15 changes of 60 KB is read from history afterwards.
    const subscriptions = [{ namespace, requestId: 1001 }];
    const writes = Array.from({ length: 15 }, (_, index) =>
      setRequest(2000 + index, namespace, `held${index}`, "h".repeat(60_000)),
    );
    reader.sendRaw(
      JSON.stringify([subscribeRequest(subscriptions[0]), ...writes]),
    );
    const batch = await batchResponse(reader);

    const changes = writes.map(({ id }) => ({
      namespace,
      seq: resultOf(batch, id).seq,
    }));
    const expected = expectedSeqs(changes, subscriptions, batch);
    await assertDelivered(reader, subscriptions, expected);
    assert.equal(expected.get(namespace)!.length, 15);
    assert.equal(reader.socket.readyState, reader.socket.OPEN);
    await reader.close();
  });

  test("live writes during replay lose nothing", async () => {
    const namespace = "tenant:acme/busy";
    const writer = await fixture.connect("acme");
    const value = "w".repeat(60_000);
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        Array.from({ length: 10 }, (_, index) =>
          writer.call("kv/set", {
            namespace,
            key: `k${round * 10 + index}`,
            value,
          }),
        ),
      );
    }

    const reader = await fixture.connect("acme");
    const subscribed = await reader.call("watch/subscribe", {
      namespace,
      fromSeq: 0,
    });
    // The reader stops reading, so the replay stalls, while 60 KB live
    // writes arrive: past half the 1 MiB limit they stop being kept in
    // memory and come from history once the replay is done.
    const tcp = (reader.socket as any)._socket;
    tcp.pause();
    const liveWrites = 60;
    for (let index = 0; index < liveWrites; index++) {
      await writer.call("kv/set", { namespace, key: `live${index}`, value });
    }
    tcp.resume();

    const expected = subscribed.seq + liveWrites;
    await reader.waitFor(
      () => reader.changes.some((change) => change.seq === expected),
      20_000,
    );
    // The subscribe was the reader's first request, so its id is 1.
    const delivered = routeNotifications(reader.received, [
      { namespace, requestId: 1, fromSeq: 0 },
    ]).get(namespace);
    const first = reader.changes[0].seq - 1;
    assert.deepEqual(
      delivered,
      Array.from({ length: expected - first }, (_, index) => first + index + 1),
    );
    assert.equal(reader.socket.readyState, reader.socket.OPEN);
    await reader.close();
    await writer.close();
  });
});
