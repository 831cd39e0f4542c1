import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import {
  TestClient,
  type CloseInfo,
  type Message,
} from "../support/rpc-client.js";
import { ServerFixture, useServerFixture } from "../support/server-fixture.js";
import { type CreatedKey } from "../support/server-process.js";
import { forEachStore } from "../support/stores.js";
import {
  ClientPool,
  delay,
  frameIndex,
  isChangeWithSeq,
  range,
  seqsOf,
  setPipelined,
  waitForClose,
  waitForSeq,
  type AcknowledgedWrite,
} from "../support/watch-helpers.js";

forEachStore("watch", (kind) => {
  // Creating a key runs the CLI, which takes a noticeable fraction of a
  // second, so the tests share two tenants. Each test writes below a
  // namespace of its own, and no two tests run at the same time, so the
  // changes a test sees are its own and its seqs follow each other.
  const fixture = useServerFixture(kind, {
    keys: { acme: { tenant: "acme" }, acme2: { tenant: "acme2" } },
  });
  const pool = new ClientPool();

  function connect(key: CreatedKey = fixture.keys.acme): Promise<TestClient> {
    return pool.connect(fixture.server.url, { apiKey: key.key });
  }

  async function currentStoreId(): Promise<string> {
    const probe = await connect();
    const result = await probe.call("watch/subscribe", {
      namespace: "tenant:acme/store-id-probe",
    });
    await probe.close();
    return result.storeId;
  }

  afterEach(() => pool.closeAll());

  describe("watch/subscribe result", () => {
    it("returns namespace, tenant seq, storeId", async () => {
      const root = "tenant:acme/sub-result";
      const client = await connect();
      const acks = await setPipelined(client, [
        { namespace: `${root}/a`, key: "k1", value: 1 },
        { namespace: `${root}/b`, key: "k2", value: 2 },
        { namespace: root, key: "k3", value: 3 },
      ]);

      const result = await client.call("watch/subscribe", { namespace: root });

      assert.deepEqual(Object.keys(result).sort(), [
        "namespace",
        "seq",
        "storeId",
      ]);
      assert.equal(result.namespace, root);
      assert.equal(result.seq, acks[2].seq);
      assert.equal(typeof result.storeId, "string");
      assert.ok(result.storeId.length > 0);
    });

    it("seq counts the whole tenant", async () => {
      const client = await connect();
      const acks = await setPipelined(client, [
        { namespace: "tenant:acme/tenant-seq/a", key: "k", value: 1 },
        { namespace: "tenant:acme/elsewhere", key: "k", value: 2 },
      ]);

      const result = await client.call("watch/subscribe", {
        namespace: "tenant:acme/tenant-seq/never-written",
      });

      assert.equal(acks[1].seq, acks[0].seq + 1);
      assert.equal(result.seq, acks[1].seq);
    });

    it("storeId is the same for every tenant", async () => {
      const acme = await connect(fixture.keys.acme);
      const acme2 = await connect(fixture.keys.acme2);

      const first = await acme.call("watch/subscribe", {
        namespace: "tenant:acme/store-id",
      });
      const second = await acme2.call("watch/subscribe", {
        namespace: "tenant:acme2/store-id",
      });

      assert.equal(first.storeId, second.storeId);
    });
  });

  describe("watch/change notification", () => {
    it("set and delete carry exact fields", async () => {
      const namespace = "tenant:acme/change-fields/prefs";
      const watcher = await connect();
      const writer = await connect();
      await watcher.call("watch/subscribe", {
        namespace: "tenant:acme/change-fields",
      });

      const value = { mode: "dark", sizes: [1, 2.5], nested: { on: true } };
      const first = await writer.call("kv/set", {
        namespace,
        key: "theme",
        value,
        actor: "auth0|u1",
      });
      const second = await writer.call("kv/set", {
        namespace,
        key: "theme",
        value: null,
      });
      const deleteStart = Date.now();
      const removed = await writer.call("kv/delete", {
        namespace,
        key: "theme",
        actor: "cleanup-job",
      });
      const deleteEnd = Date.now();
      await watcher.waitForChanges(3);
      const [firstChange, secondChange, deleteChange] = watcher.changes;

      assert.equal(first.updatedBy, "auth0|u1");
      assert.deepEqual(firstChange, {
        seq: first.seq,
        op: "set",
        namespace,
        key: "theme",
        value,
        version: 1,
        actor: "auth0|u1",
        timestamp: first.updatedAt,
        tenantId: "acme",
      });
      assert.equal(second.updatedBy, fixture.keys.acme.id);
      assert.deepEqual(secondChange, {
        seq: second.seq,
        op: "set",
        namespace,
        key: "theme",
        value: null,
        version: 2,
        actor: fixture.keys.acme.id,
        timestamp: second.updatedAt,
        tenantId: "acme",
      });
      assert.equal("value" in deleteChange, false);
      assert.deepEqual(Object.keys(deleteChange).sort(), [
        "actor",
        "key",
        "namespace",
        "op",
        "seq",
        "tenantId",
        "timestamp",
        "version",
      ]);
      assert.equal(deleteChange.seq, removed.seq);
      assert.equal(deleteChange.op, "delete");
      assert.equal(deleteChange.namespace, namespace);
      assert.equal(deleteChange.key, "theme");
      assert.equal(deleteChange.version, 3);
      assert.equal(deleteChange.version, removed.version);
      assert.equal(deleteChange.actor, "cleanup-job");
      assert.equal(deleteChange.tenantId, "acme");
      assert.equal(typeof deleteChange.timestamp, "number");
      assert.ok(deleteChange.timestamp >= deleteStart);
      assert.ok(deleteChange.timestamp <= deleteEnd);
    });

    it("delete without actor names the key id", async () => {
      const namespace = "tenant:acme/delete-actor";
      const watcher = await connect();
      await watcher.call("watch/subscribe", { namespace });

      await watcher.call("kv/set", { namespace, key: "k", value: 1 });
      const removed = await watcher.call("kv/delete", { namespace, key: "k" });
      await waitForSeq(watcher, removed.seq);

      assert.equal(watcher.changes[1].op, "delete");
      assert.equal(watcher.changes[1].actor, fixture.keys.acme.id);
    });

    it("notification envelope has no id", async () => {
      const namespace = "tenant:acme/envelope";
      const client = await connect();
      await client.call("watch/subscribe", { namespace });

      const written = await client.call("kv/set", {
        namespace,
        key: "k",
        value: 1,
      });
      await waitForSeq(client, written.seq);
      const frame =
        client.received[frameIndex(client, isChangeWithSeq(written.seq))];

      assert.deepEqual(Object.keys(frame).sort(), [
        "jsonrpc",
        "method",
        "params",
      ]);
      assert.equal(frame.jsonrpc, "2.0");
      assert.equal(frame.method, "watch/change");
    });

    it("batch changes carry batch actor", async () => {
      const namespace = "tenant:acme/change-batch/doc";
      const watcher = await connect();
      const writer = await connect();
      await watcher.call("watch/subscribe", {
        namespace: "tenant:acme/change-batch",
      });

      const batch = await writer.call("kv/batch", {
        actor: "agent-7",
        operations: [
          { op: "set", namespace, key: "a", value: "first" },
          { op: "set", namespace, key: "b", value: ["second"] },
          { op: "delete", namespace, key: "a" },
        ],
      });
      const stored = await writer.call("kv/get", { namespace, key: "b" });
      await watcher.waitForChanges(3);
      const changes = watcher.changes;

      assert.deepEqual(
        seqsOf(changes),
        batch.results.map((result: { seq: number }) => result.seq),
      );
      assert.deepEqual(
        changes.map((change) => [change.op, change.key, change.version]),
        [
          ["set", "a", 1],
          ["set", "b", 1],
          ["delete", "a", 2],
        ],
      );
      assert.deepEqual(
        changes.map((change) => change.actor),
        ["agent-7", "agent-7", "agent-7"],
      );
      assert.equal(changes[0].value, "first");
      assert.deepEqual(changes[1].value, ["second"]);
      assert.equal("value" in changes[2], false);
      assert.equal(changes[1].timestamp, stored.updatedAt);
      assert.equal(stored.updatedBy, "agent-7");
    });
  });

  describe("watch/subscribe namespace matching", () => {
    it("stops at the tenant boundary", async () => {
      const watcher = await connect(fixture.keys.acme);
      const acme = await connect(fixture.keys.acme);
      const acme2 = await connect(fixture.keys.acme2);
      await watcher.call("watch/subscribe", { namespace: "tenant:acme" });

      // The writes of tenant acme2 are acknowledged before tenant acme
      // writes start, and a single server queues a notification when it
      // responds to the write, so a wrong match would arrive before the
      // sentinel.
      await acme2.call("kv/set", {
        namespace: "tenant:acme2",
        key: "k",
        value: 1,
      });
      await acme2.call("kv/set", {
        namespace: "tenant:acme2/x",
        key: "k",
        value: 2,
      });
      await acme.call("kv/set", {
        namespace: "tenant:acme/x",
        key: "k",
        value: 3,
      });
      const sentinel = await acme.call("kv/set", {
        namespace: "tenant:acme",
        key: "sentinel",
        value: 4,
      });
      await waitForSeq(watcher, sentinel.seq);

      assert.deepEqual(
        watcher.changes.map((change) => change.namespace),
        ["tenant:acme/x", "tenant:acme"],
      );
      assert.deepEqual(
        watcher.changes.map((change) => change.tenantId),
        ["acme", "acme"],
      );
    });

    it("stops at the segment boundary", async () => {
      const root = "tenant:acme/segment";
      const watcher = await connect();
      const writer = await connect();
      await watcher.call("watch/subscribe", { namespace: `${root}/a` });

      for (const namespace of [
        `${root}/ab`,
        root,
        `${root}/b/a`,
        `${root}/a/x`,
      ]) {
        await writer.call("kv/set", { namespace, key: "k", value: namespace });
      }
      const sentinel = await writer.call("kv/set", {
        namespace: `${root}/a`,
        key: "sentinel",
        value: true,
      });
      await waitForSeq(watcher, sentinel.seq);

      assert.deepEqual(
        watcher.changes.map((change) => change.namespace),
        [`${root}/a/x`, `${root}/a`],
      );
    });

    it("overlapping subscriptions deliver once", async () => {
      const root = "tenant:acme/overlap";
      const watcher = await connect();
      const writer = await connect();
      await watcher.call("watch/subscribe", { namespace: root });
      await watcher.call("watch/subscribe", { namespace: `${root}/a` });

      const acks = [];
      for (const namespace of [`${root}/a`, `${root}/a/b`, root, `${root}/b`]) {
        acks.push(
          await writer.call("kv/set", { namespace, key: "k", value: 1 }),
        );
      }
      await waitForSeq(watcher, acks[3].seq);

      assert.deepEqual(
        seqsOf(watcher.changes),
        acks.map((ack) => ack.seq),
      );
    });
  });

  describe("watch delivery under load", () => {
    it(
      "concurrent writers reach every subscriber",
      { timeout: 60_000 },
      async () => {
        const root = "tenant:acme/concurrent";
        const writerCount = 10;
        const writesPerWriter = 50;
        const total = writerCount * writesPerWriter;

        const subscribers = await Promise.all(range(1, 3).map(() => connect()));
        const subscribed = [];
        for (const subscriber of subscribers) {
          subscribed.push(
            await subscriber.call("watch/subscribe", { namespace: root }),
          );
        }
        const base = subscribed[0].seq;
        // One subscriber also watches a namespace below, which must not
        // double its notifications.
        await subscribers[2].call("watch/subscribe", {
          namespace: `${root}/w0`,
        });
        const writers = await Promise.all(
          range(1, writerCount).map(() => connect()),
        );

        const acksPerWriter = await Promise.all(
          writers.map((writer, w) =>
            setPipelined(
              writer,
              range(1, writesPerWriter).map((n) => ({
                namespace: `${root}/w${w}`,
                key: `k${n % 7}`,
                value: { writer: w, n },
              })),
            ),
          ),
        );
        const acks = acksPerWriter.flat();
        const sentinel = await writers[0].call("kv/set", {
          namespace: root,
          key: "sentinel",
          value: true,
        });

        assert.deepEqual(
          subscribed.map((result) => result.seq),
          [base, base, base],
        );
        assert.deepEqual(
          acks.map((ack) => ack.seq).sort((a, b) => a - b),
          range(base + 1, base + total),
          "the tenant's seqs are gapless",
        );
        assert.equal(sentinel.seq, base + total + 1);
        for (const writerAcks of acksPerWriter) {
          const seqs = writerAcks.map((ack) => ack.seq);
          assert.deepEqual(
            seqs,
            [...seqs].sort((a, b) => a - b),
            "one connection's writes take seqs in request order",
          );
        }

        const bySeq = new Map(acks.map((ack) => [ack.seq, ack]));
        for (const [index, subscriber] of subscribers.entries()) {
          await waitForSeq(subscriber, sentinel.seq, 20_000);

          assert.deepEqual(
            seqsOf(subscriber.changes),
            range(base + 1, sentinel.seq),
            `subscriber ${index} sees each seq once, in order`,
          );
          const mismatches = subscriber.changes
            .filter((change) => change.seq < sentinel.seq)
            .filter((change) => {
              const ack = bySeq.get(change.seq)!;
              return (
                change.namespace !== ack.namespace ||
                change.key !== ack.key ||
                change.version !== ack.version ||
                JSON.stringify(change.value) !== JSON.stringify(ack.value)
              );
            });
          assert.deepEqual(
            mismatches,
            [],
            `subscriber ${index} changes match the writes`,
          );
        }
      },
    );

    it("write response precedes own notification", async () => {
      const root = "tenant:acme/own-order";
      const client = await connect();
      await client.call("watch/subscribe", { namespace: root });

      const pending: Array<Promise<any>> = range(1, 20).map((n) =>
        client.call("kv/set", { namespace: root, key: `k${n % 4}`, value: n }),
      );
      const batch = client.call("kv/batch", {
        operations: [
          { op: "set", namespace: `${root}/b`, key: "x", value: 1 },
          { op: "set", namespace: `${root}/b`, key: "y", value: 2 },
          { op: "delete", namespace: `${root}/b`, key: "x" },
        ],
      });
      const removed = client.call("kv/delete", { namespace: root, key: "k1" });
      const setResults = await Promise.all(pending);
      const batchResult = await batch;
      const deleteResult = await removed;
      await waitForSeq(client, deleteResult.seq);

      const responseBeforeChange = (
        seq: number,
        isResponse: (frame: any) => boolean,
      ): boolean => {
        const responseIndex = frameIndex(client, isResponse);
        const changeIndex = frameIndex(client, isChangeWithSeq(seq));
        return responseIndex >= 0 && changeIndex > responseIndex;
      };
      for (const result of setResults) {
        assert.ok(
          responseBeforeChange(
            result.seq,
            (frame) =>
              frame.result?.key !== undefined &&
              frame.result.seq === result.seq,
          ),
          `kv/set response for seq ${result.seq} comes first`,
        );
      }
      for (const result of batchResult.results) {
        assert.ok(
          responseBeforeChange(result.seq, (frame) =>
            Array.isArray(frame.result?.results),
          ),
          `kv/batch response comes before the change with seq ${result.seq}`,
        );
      }
      assert.ok(
        responseBeforeChange(
          deleteResult.seq,
          (frame) =>
            frame.result?.key === "k1" && frame.result.seq === deleteResult.seq,
        ),
        "kv/delete response comes first",
      );
      assert.deepEqual(
        seqsOf(client.changes),
        range(setResults[0].seq, deleteResult.seq),
      );
    });

    it("subscribe response precedes live changes", async () => {
      const root = "tenant:acme/sub-order";
      const writer = await connect();
      const subscriber = await connect();

      const writes = (first: number, last: number) =>
        setPipelined(
          writer,
          range(first, last).map((n) => ({
            namespace: root,
            key: `k${n}`,
            value: n,
          })),
        );
      const firstWrites = writes(1, 50);
      const subscribed = subscriber.call("watch/subscribe", {
        namespace: root,
      });
      const secondWrites = writes(51, 100);
      const result = await subscribed;
      await Promise.all([firstWrites, secondWrites]);
      const later = await writes(101, 105);
      const last = later[later.length - 1].seq;
      await waitForSeq(subscriber, last);

      const responseIndex = frameIndex(
        subscriber,
        (frame) => frame.result?.storeId !== undefined,
      );
      const firstChangeIndex = frameIndex(
        subscriber,
        (frame) => frame.method === "watch/change",
      );
      assert.ok(responseIndex >= 0);
      assert.ok(responseIndex < firstChangeIndex);
      assert.deepEqual(seqsOf(subscriber.changes), range(result.seq + 1, last));
    });
  });

  describe("watch/subscribe with fromSeq", () => {
    it("replays history then continues live", { timeout: 30_000 }, async () => {
      const root = "tenant:acme/replay";
      const history = 200;
      const writer = await connect();
      const written = (first: number, last: number) =>
        range(first, last).map((n) => ({
          namespace: n % 2 === 0 ? `${root}/even` : `${root}/odd`,
          key: `k${n % 9}`,
          value: { n },
        }));
      const acks: AcknowledgedWrite[] = await setPipelined(
        writer,
        written(1, history),
      );
      const base = acks[0].seq - 1;
      const fromSeq = base + 50;
      const storeId = await currentStoreId();
      const subscriber = await connect();

      // Writers run while the subscription starts and replays, so that live
      // changes race the replay.
      const duringBefore = setPipelined(
        writer,
        written(history + 1, history + 50),
      );
      const subscribed = subscriber.call("watch/subscribe", {
        namespace: root,
        fromSeq,
        storeId,
      });
      const duringAfter = setPipelined(
        writer,
        written(history + 51, history + 100),
      );
      const result = await subscribed;
      acks.push(...(await duringBefore), ...(await duringAfter));
      acks.push(
        ...(await setPipelined(writer, written(history + 101, history + 120))),
      );
      const last = base + history + 120;
      await waitForSeq(subscriber, last, 20_000);

      assert.deepEqual(
        acks.map((ack) => ack.seq),
        range(base + 1, last),
        "one writer's seqs follow each other",
      );
      assert.ok(result.seq >= base + history);
      assert.ok(result.seq <= base + history + 100);
      assert.equal(result.storeId, storeId);
      assert.deepEqual(seqsOf(subscriber.changes), range(fromSeq + 1, last));
      const responseIndex = frameIndex(
        subscriber,
        (frame) => frame.result?.storeId !== undefined,
      );
      const firstChangeIndex = frameIndex(
        subscriber,
        (frame) => frame.method === "watch/change",
      );
      assert.ok(
        responseIndex < firstChangeIndex,
        "subscribe response comes first",
      );
      const bySeq = new Map(acks.map((ack) => [ack.seq, ack]));
      const mismatches = subscriber.changes.filter((change) => {
        const ack = bySeq.get(change.seq)!;
        return (
          change.namespace !== ack.namespace ||
          change.key !== ack.key ||
          change.version !== ack.version ||
          change.actor !== ack.updatedBy ||
          change.timestamp !== ack.updatedAt ||
          JSON.stringify(change.value) !== JSON.stringify(ack.value)
        );
      });
      assert.deepEqual(
        mismatches,
        [],
        "replayed and live changes match the writes",
      );
    });

    it("replays only matching namespaces", async () => {
      const root = "tenant:acme/replay-filter";
      const writer = await connect();
      const acks = await setPipelined(
        writer,
        range(1, 10).map((n) => ({
          namespace: n % 2 === 0 ? `${root}/a` : `${root}/ab`,
          key: "k",
          value: n,
        })),
      );
      const storeId = await currentStoreId();
      const subscriber = await connect();

      const result = await subscriber.call("watch/subscribe", {
        namespace: `${root}/a`,
        fromSeq: acks[0].seq - 1,
        storeId,
      });
      const sentinel = await writer.call("kv/set", {
        namespace: `${root}/a`,
        key: "sentinel",
        value: true,
      });
      await waitForSeq(subscriber, sentinel.seq);

      assert.equal(result.seq, acks[9].seq);
      assert.deepEqual(seqsOf(subscriber.changes), [
        ...acks
          .filter((ack) => ack.namespace === `${root}/a`)
          .map((ack) => ack.seq),
        sentinel.seq,
      ]);
    });

    it("fromSeq 0 replays from the first change", async () => {
      const acme2 = await connect(fixture.keys.acme2);
      const storeId = await currentStoreId();
      const first = await acme2.call("kv/set", {
        namespace: "tenant:acme2/from-zero",
        key: "k",
        value: 1,
      });
      const subscriber = await connect(fixture.keys.acme2);

      await subscriber.call("watch/subscribe", {
        namespace: "tenant:acme2",
        fromSeq: 0,
        storeId,
      });
      await waitForSeq(subscriber, first.seq);

      assert.equal(subscriber.changes[0].seq, 1);
      assert.deepEqual(
        seqsOf(subscriber.changes),
        range(1, first.seq),
        "every change of the tenant, in order",
      );
    });

    it("fromSeq equal to latest replays nothing", async () => {
      const root = "tenant:acme/from-latest";
      const writer = await connect();
      const acks = await setPipelined(
        writer,
        range(1, 3).map((n) => ({ namespace: root, key: `k${n}`, value: n })),
      );
      const latest = acks[2].seq;
      const storeId = await currentStoreId();
      const subscriber = await connect();

      const result = await subscriber.call("watch/subscribe", {
        namespace: root,
        fromSeq: latest,
        storeId,
      });
      const next = await writer.call("kv/set", {
        namespace: root,
        key: "k4",
        value: 4,
      });
      await waitForSeq(subscriber, next.seq);

      assert.equal(result.seq, latest);
      assert.deepEqual(seqsOf(subscriber.changes), [latest + 1]);
    });

    it("fromSeq above latest is rejected", async () => {
      const root = "tenant:acme/from-above";
      const client = await connect();
      const acks = await setPipelined(
        client,
        range(1, 3).map((n) => ({ namespace: root, key: `k${n}`, value: n })),
      );
      const latest = acks[2].seq;
      const storeId = await currentStoreId();

      const error = await client.callError("watch/subscribe", {
        namespace: `${root}/x`,
        fromSeq: latest + 1,
        storeId,
      });

      assert.equal(error.code, -32602);
      assert.deepEqual(error.data, { latestSeq: latest });
    });

    it("invalid fromSeq is rejected", async () => {
      const client = await connect();
      const storeId = await currentStoreId();

      for (const fromSeq of [-1, 1.5, "0", null, true]) {
        const error = await client.callError("watch/subscribe", {
          namespace: "tenant:acme/from-invalid",
          fromSeq,
          storeId,
        });

        assert.equal(error.code, -32602, `fromSeq ${JSON.stringify(fromSeq)}`);
      }
    });
  });

  describe("watch/subscribe storeId", () => {
    it("mismatch returns history compacted", async () => {
      const root = "tenant:acme/store-mismatch";
      const client = await connect();
      await client.call("kv/set", { namespace: root, key: "k", value: 1 });
      const storeId = await currentStoreId();
      const otherStoreId = `${storeId}-restored`;

      const withFromSeq = await client.callError("watch/subscribe", {
        namespace: root,
        fromSeq: 1,
        storeId: otherStoreId,
      });
      const withoutFromSeq = await client.callError("watch/subscribe", {
        namespace: root,
        storeId: otherStoreId,
      });
      // storeId is checked before fromSeq, so a fromSeq above the latest
      // seq still reports the store change.
      const aboveLatest = await client.callError("watch/subscribe", {
        namespace: root,
        fromSeq: 1_000_000,
        storeId: otherStoreId,
      });

      // The whole history of this test server is retained, so the oldest
      // change is the tenant's first.
      for (const error of [withFromSeq, withoutFromSeq, aboveLatest]) {
        assert.equal(error.code, -32006);
        assert.deepEqual(error.data, { oldestSeq: 1, storeId });
      }
    });

    it("matching storeId without fromSeq subscribes", async () => {
      const namespace = "tenant:acme/store-match";
      const client = await connect();
      const written = await client.call("kv/set", {
        namespace,
        key: "k",
        value: 1,
      });
      const storeId = await currentStoreId();

      const result = await client.call("watch/subscribe", {
        namespace,
        storeId,
      });

      assert.equal(result.storeId, storeId);
      assert.equal(result.seq, written.seq);
    });

    it("empty or non-string storeId rejected", async () => {
      const client = await connect();

      for (const storeId of ["", 5, null, {}, ["x"]]) {
        for (const fromSeq of [undefined, 0]) {
          const params: Record<string, unknown> = {
            namespace: "tenant:acme/store-invalid",
            storeId,
          };
          if (fromSeq !== undefined) params.fromSeq = fromSeq;

          const error = await client.callError("watch/subscribe", params);

          assert.equal(error.code, -32602, `params ${JSON.stringify(params)}`);
        }
      }
    });
  });

  describe("watch/subscribe repeated", () => {
    it("resubscribe is a no-op", async () => {
      const root = "tenant:acme/resubscribe";
      const watcher = await connect();
      const writer = await connect();
      const first = await watcher.call("watch/subscribe", { namespace: root });
      const acks = await setPipelined(
        writer,
        range(1, 2).map((n) => ({ namespace: root, key: `k${n}`, value: n })),
      );
      await waitForSeq(watcher, acks[1].seq);

      const again = await watcher.call("watch/subscribe", { namespace: root });
      acks.push(
        ...(await setPipelined(
          writer,
          range(3, 4).map((n) => ({ namespace: root, key: `k${n}`, value: n })),
        )),
      );
      await waitForSeq(watcher, acks[3].seq);

      assert.deepEqual(again, {
        namespace: root,
        seq: acks[1].seq,
        storeId: first.storeId,
      });
      assert.deepEqual(
        seqsOf(watcher.changes),
        acks.map((ack) => ack.seq),
        "each change arrives once",
      );
    });

    it("resubscribe with fromSeq is rejected", async () => {
      const root = "tenant:acme/resubscribe-from";
      const watcher = await connect();
      const writer = await connect();
      const first = await watcher.call("watch/subscribe", { namespace: root });
      const earlier = await writer.call("kv/set", {
        namespace: root,
        key: "k1",
        value: 1,
      });
      await waitForSeq(watcher, earlier.seq);

      const error = await watcher.callError("watch/subscribe", {
        namespace: root,
        fromSeq: first.seq,
        storeId: first.storeId,
      });
      const later = await writer.call("kv/set", {
        namespace: root,
        key: "k2",
        value: 2,
      });
      await waitForSeq(watcher, later.seq);

      assert.equal(error.code, -32602);
      assert.deepEqual(
        seqsOf(watcher.changes),
        [earlier.seq, later.seq],
        "no replay, no duplicate",
      );
    });
  });

  describe("watch/unsubscribe", () => {
    it("removes only the exact namespace", async () => {
      const root = "tenant:acme/unsubscribe";
      const watcher = await connect();
      const writer = await connect();
      for (const namespace of [root, `${root}/a`, `${root}/sentinel`]) {
        await watcher.call("watch/subscribe", { namespace });
      }
      const writeAndWait = async (namespaces: string[]) => {
        const count = watcher.changes.length;
        for (const namespace of namespaces) {
          await writer.call("kv/set", {
            namespace,
            key: "k",
            value: namespace,
          });
        }
        const sentinel = await writer.call("kv/set", {
          namespace: `${root}/sentinel`,
          key: "k",
          value: 0,
        });
        await waitForSeq(watcher, sentinel.seq);
        return watcher.changes.slice(count).map((change) => change.namespace);
      };

      const never = await watcher.call("watch/unsubscribe", {
        namespace: `${root}/a/b`,
      });
      const removedRoot = await watcher.call("watch/unsubscribe", {
        namespace: root,
      });
      const removedRootAgain = await watcher.call("watch/unsubscribe", {
        namespace: root,
      });
      const afterRoot = await writeAndWait([root, `${root}/a`, `${root}/x`]);

      assert.deepEqual(never, {
        namespace: `${root}/a/b`,
        unsubscribed: false,
      });
      assert.deepEqual(removedRoot, { namespace: root, unsubscribed: true });
      assert.deepEqual(removedRootAgain, {
        namespace: root,
        unsubscribed: false,
      });
      assert.deepEqual(
        afterRoot,
        [`${root}/a`, `${root}/sentinel`],
        "the subscription below the removed one stays",
      );

      await watcher.call("watch/subscribe", { namespace: root });
      const removedChild = await watcher.call("watch/unsubscribe", {
        namespace: `${root}/a`,
      });
      const afterChild = await writeAndWait([`${root}/a`]);

      assert.deepEqual(removedChild, {
        namespace: `${root}/a`,
        unsubscribed: true,
      });
      assert.deepEqual(
        afterChild,
        [`${root}/a`, `${root}/sentinel`],
        "the subscription above the removed one stays",
      );

      await watcher.call("watch/unsubscribe", { namespace: root });
      const afterBoth = await writeAndWait([root, `${root}/a`]);

      assert.deepEqual(afterBoth, [`${root}/sentinel`], "changes stop");
    });
  });

  describe("watch/subscribe limits", () => {
    it("65th subscription is rate limited", async () => {
      const root = "tenant:acme/sub-limit";
      const client = await connect();
      const results = await Promise.all(
        range(1, 64).map((n) =>
          client.request("watch/subscribe", { namespace: `${root}/n${n}` }),
        ),
      );

      const over = await client.callError("watch/subscribe", {
        namespace: `${root}/n65`,
      });
      const repeated = await client.request("watch/subscribe", {
        namespace: `${root}/n1`,
      });
      await client.call("watch/unsubscribe", { namespace: `${root}/n1` });
      const afterUnsubscribe = await client.request("watch/subscribe", {
        namespace: `${root}/n65`,
      });

      assert.deepEqual(
        results.filter((response) => response.error !== undefined),
        [],
        "64 subscriptions succeed",
      );
      assert.equal(over.code, -32007);
      assert.deepEqual(over.data, { limit: 64 });
      assert.equal(
        repeated.error,
        undefined,
        "resubscribe at the limit is a no-op",
      );
      assert.equal(
        afterUnsubscribe.error,
        undefined,
        "unsubscribe frees a slot",
      );
    });
  });

  describe("history compaction", () => {
    it(
      "old fromSeq returns history compacted",
      { timeout: 30_000 },
      async () => {
        const tenant = "compacted";
        const history = new ServerFixture(kind, {
          keys: { compacted: { tenant } },
          args: ["--history-changes", "10", "--history-seconds", "0"],
        });
        const clients: TestClient[] = [];
        const connect = async (key: string) => {
          const client = await TestClient.connect(history.server.url, {
            apiKey: key,
          });
          clients.push(client);
          return client;
        };
        try {
          await history.start();
          const root = `tenant:${tenant}`;
          const { key } = history.keys.compacted;
          const writer = await connect(key);
          await setPipelined(
            writer,
            range(1, 50).map((n) => ({
              namespace: root,
              key: `k${n % 5}`,
              value: n,
            })),
          );
          const probe = await connect(key);
          const { storeId } = await probe.call("watch/subscribe", {
            namespace: root,
          });

          // The server keeps only the last 10 changes here, but it may prune
          // on a timer (every 5 s on PostgreSQL), so ask again every 250 ms
          // for up to 15 s until seq 1 is gone. Each attempt uses a new
          // connection, because a successful subscribe would turn the next
          // attempt into a resubscribe.
          const deadline = Date.now() + 15_000;
          let response: Message;
          for (;;) {
            const attempt = await connect(key);
            response = await attempt.request("watch/subscribe", {
              namespace: root,
              fromSeq: 0,
              storeId,
            });
            await attempt.close();
            if (response.error?.code === -32006 || Date.now() > deadline) break;
            await delay(250);
          }
          const resumer = await connect(key);
          const resumed = await resumer.call("watch/subscribe", {
            namespace: root,
            fromSeq: 45,
            storeId,
          });
          await waitForSeq(resumer, 50);

          assert.equal(response.error?.code, -32006);
          assert.equal(response.error.data.storeId, storeId);
          assert.ok(
            response.error.data.oldestSeq > 1,
            "old changes were pruned",
          );
          assert.ok(
            response.error.data.oldestSeq <= 41,
            "the last 10 changes stay",
          );
          assert.deepEqual(Object.keys(response.error.data).sort(), [
            "oldestSeq",
            "storeId",
          ]);
          assert.equal(resumed.seq, 50);
          assert.deepEqual(seqsOf(resumer.changes), [46, 47, 48, 49, 50]);
        } finally {
          for (const client of clients) client.socket.terminate();
          await history.stop();
        }
      },
    );
  });

  describe("slow consumer", { timeout: 90_000 }, () => {
    const tenant = "slow";
    const root = `tenant:${tenant}`;
    const rounds = 16;
    const writesPerRound = 25;
    const total = rounds * writesPerRound;
    // 400 changes of about 60 KB, about 24 MB in all: far more than the
    // 256 KiB outbound limit plus what the kernel's socket buffers absorb.
    const filler = "x".repeat(60_000);
    const slow = new ServerFixture(kind, {
      keys: { slow: { tenant } },
      args: ["--max-outbound-bytes", "262144"],
    });
    let key: string;
    let storeId: string;
    let paused: TestClient;
    let reader: TestClient;
    let writer: TestClient;
    let pausedClose: CloseInfo | undefined;
    const clients: TestClient[] = [];

    before(async () => {
      await slow.start();
      ({ key } = slow.keys.slow);
      for (let n = 0; n < 3; n++) {
        clients.push(
          await TestClient.connect(slow.server.url, { apiKey: key }),
        );
      }
      [paused, reader, writer] = clients;
      ({ storeId } = await paused.call("watch/subscribe", { namespace: root }));
      await reader.call("watch/subscribe", { namespace: root });

      // Stop reading: the server's unsent data for this socket now grows.
      paused.socket.pause();
      for (let round = 0; round < rounds; round++) {
        await setPipelined(
          writer,
          range(1, writesPerRound).map((n) => ({
            namespace: root,
            key: `k${n}`,
            value: `${round}:${n}:${filler}`,
          })),
        );
        // The reading subscriber keeps up before the next round starts.
        await reader.waitForChanges((round + 1) * writesPerRound, 20_000);
      }
      // Reading again lets the close frame through, unless the server
      // already dropped the socket because the close handshake took too long.
      paused.socket.resume();
      pausedClose = await waitForClose(paused, 15_000).catch(() => undefined);
    });

    after(async () => {
      for (const client of clients) client.socket.terminate();
      await slow.stop();
    });

    it("paused subscriber is closed", () => {
      assert.ok(pausedClose !== undefined, "the paused subscriber was closed");
      assert.ok(
        pausedClose.code === 4008 || pausedClose.code === 1006,
        `close code ${pausedClose.code}, expected 4008 or a dropped socket`,
      );
      assert.ok(
        paused.changes.length < total,
        `the server stopped sending, ${paused.changes.length} of ${total} arrived`,
      );
      assert.deepEqual(
        seqsOf(paused.changes),
        range(1, paused.changes.length),
        "what arrived is a gapless prefix",
      );
    });

    it("reading subscriber is unaffected", async () => {
      const stored = await reader.call("kv/get", {
        namespace: root,
        key: "k1",
      });

      assert.deepEqual(seqsOf(reader.changes), range(1, total));
      assert.equal(reader.socket.readyState, reader.socket.OPEN);
      assert.equal(stored.version, rounds);
    });

    it("reconnect with fromSeq loses nothing", async () => {
      const lastSeen = paused.changes.at(-1)?.seq ?? 0;
      const resumed = await TestClient.connect(slow.server.url, {
        apiKey: key,
      });
      clients.push(resumed);

      const result = await resumed.call("watch/subscribe", {
        namespace: root,
        fromSeq: lastSeen,
        storeId,
      });
      if (lastSeen < total) await waitForSeq(resumed, total, 30_000);

      assert.equal(result.seq, total);
      assert.deepEqual(seqsOf(resumed.changes), range(lastSeen + 1, total));
      const expectedValues = range(lastSeen + 1, total).map((seq) => {
        const round = Math.floor((seq - 1) / writesPerRound);
        const n = ((seq - 1) % writesPerRound) + 1;
        return `${round}:${n}:${filler}`;
      });
      assert.ok(
        resumed.changes.every(
          (change, index) => change.value === expectedValues[index],
        ),
        "replayed values match the writes",
      );
    });
  });
});
