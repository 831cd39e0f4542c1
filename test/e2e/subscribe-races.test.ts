import assert from "node:assert/strict";
import { test } from "node:test";

import { TestClient } from "../support/rpc-client.js";
import { useServerFixture } from "../support/server-fixture.js";
import { forEachStore } from "../support/stores.js";

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
 * Routes notifications as a client does: each goes to every subscription
 * whose namespace covers it and whose last delivered seq is lower.
 */
function routeChanges(
  changes: Array<Record<string, any>>,
  subscriptions: string[],
): Map<string, number[]> {
  const delivered = new Map(subscriptions.map((ns) => [ns, [] as number[]]));
  for (const change of changes) {
    for (const namespace of subscriptions) {
      const seqs = delivered.get(namespace)!;
      const covers =
        change.namespace === namespace ||
        change.namespace.startsWith(`${namespace}/`);
      const last = seqs[seqs.length - 1] ?? 0;
      if (covers && change.seq > last) seqs.push(change.seq);
    }
  }
  return delivered;
}

forEachStore("overlapping replays", (kind) => {
  const fixture = useServerFixture(kind, {
    keys: { acme: { tenant: "acme" } },
  });

  test("narrow then broad loses nothing", async () => {
    const writer = await fixture.connect("acme");
    const value = "r".repeat(20_000);
    for (let index = 1; index <= 200; index++) {
      const namespace = index % 2 ? "tenant:acme/a" : "tenant:acme/b";
      await writer.call("kv/set", { namespace, key: `k${index}`, value });
    }

    const reader = await fixture.connect("acme");
    const subscriptions = ["tenant:acme/a", "tenant:acme"];
    const responses = await sendBatch(
      reader,
      subscriptions.map((namespace) => ({
        method: "watch/subscribe",
        params: { namespace, fromSeq: 0 },
      })),
      1,
    );
    assert.ok(responses.every((response) => response.result));

    await reader.waitFor(
      () => reader.changes.some((change) => change.seq === 200),
      20_000,
    );
    // Replays that overlap in time are merged, so a change replayed for
    // both subscriptions is usually sent once. When the narrow replay ends
    // before the broad one starts, its 100 changes may come again, which
    // the protocol allows: routing by last delivered seq drops them.
    await reader.call("kv/list", { namespace: "tenant:acme/a", limit: 1 });
    assert.ok(reader.changes.length >= 200, `${reader.changes.length}`);
    assert.ok(reader.changes.length <= 300, `${reader.changes.length}`);

    const delivered = routeChanges(reader.changes, subscriptions);
    const all = Array.from({ length: 200 }, (_, index) => index + 1);
    assert.deepEqual(delivered.get("tenant:acme"), all);
    assert.deepEqual(
      delivered.get("tenant:acme/a"),
      all.filter((seq) => seq % 2 === 1),
    );
    await reader.close();
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
    const delivered = routeChanges(reader.changes, [namespace]).get(namespace);
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
