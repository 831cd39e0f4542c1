import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import {
  ClientErrorCode,
  ErrorCode,
  type Change,
  type KvClient,
} from "../../src/client/index.js";
import { kvErrorOf, takeChanges } from "../support/client-helpers.js";
import { useClientServer } from "../support/client-server.js";
import { createKey, revokeKey } from "../support/server-process.js";
import { withTimeout } from "../support/watch-helpers.js";

const fixture = useClientServer({ key: { tenant: "acme" } });
let writer: KvClient;

/** Writes `count` values under `namespace` and returns their seqs. */
async function writeMany(namespace: string, count: number): Promise<number[]> {
  const seqs: number[] = [];
  for (let n = 1; n <= count; n++) {
    const result = await writer.set({ namespace, key: `k${n}`, value: n });
    seqs.push(result.seq);
  }
  return seqs;
}

function seqsOf(changes: Change[]): number[] {
  return changes.map((change) => change.seq);
}

before(async () => {
  writer = await fixture.openShared();
});

describe("watch", () => {
  it("yields changes in seq order", async () => {
    const client = await fixture.open();
    const watch = client.watch("tenant:acme/order");
    await client
      .get({ namespace: "tenant:acme/order", key: "sync" })
      .catch(() => undefined);

    const seqs = await writeMany("tenant:acme/order/x", 5);
    const changes = await takeChanges(watch, 5);

    assert.deepEqual(seqsOf(changes), seqs);
    assert.deepEqual(
      changes.map((change) => change.value),
      [1, 2, 3, 4, 5],
    );
    assert.equal(changes[0].op, "set");
    assert.equal(changes[0].namespace, "tenant:acme/order/x");
  });

  it("breaking the loop unsubscribes", async () => {
    const client = await fixture.open();
    const namespace = "tenant:acme/break";
    const watch = client.watch(namespace);
    await client.get({ namespace, key: "sync" }).catch(() => undefined);
    const [firstSeq] = await writeMany(namespace, 1);
    for await (const change of watch) {
      assert.equal(change.seq, firstSeq);
      break;
    }

    // Subscribing with fromSeq to a namespace the connection still
    // watches is -32602, so this succeeds only after the unsubscribe.
    const again = client.watch(namespace, { fromSeq: firstSeq - 1 });
    const changes = await takeChanges(again, 1);

    assert.deepEqual(seqsOf(changes), [firstSeq]);
  });

  it("callback form delivers each change", async () => {
    const client = await fixture.open();
    const namespace = "tenant:acme/callback";
    const received: Change[] = [];
    const handle = client.watch(namespace, (change) => {
      received.push(change);
    });
    await client.get({ namespace, key: "sync" }).catch(() => undefined);
    const seqs = await writeMany(namespace, 3);

    await withTimeout(
      (async () => {
        while (received.length < 3) await new Promise((r) => setTimeout(r, 10));
      })(),
      5_000,
      "callback changes",
    );
    await handle.close();
    await handle.done;

    assert.deepEqual(seqsOf(received), seqs);
  });

  it("fromSeq replays retained changes", async () => {
    const namespace = "tenant:acme/replay";
    const seqs = await writeMany(namespace, 4);
    const client = await fixture.open();

    const watch = client.watch(namespace, { fromSeq: seqs[1] });
    const changes = await takeChanges(watch, 2);

    assert.deepEqual(seqsOf(changes), seqs.slice(2));
  });

  it("other storeId throws HistoryCompacted", async () => {
    const client = await fixture.open();
    const watch = client.watch("tenant:acme/store", {
      fromSeq: 0,
      storeId: "another-store",
    });

    const error = await kvErrorOf(watch.next());

    assert.equal(error.code, ErrorCode.HistoryCompacted);
    assert.equal(typeof error.data?.storeId, "string");
    assert.equal(typeof error.data?.oldestSeq, "number");
    assert.deepEqual(await watch.next(), { value: undefined, done: true });
  });

  it("second watch of a namespace is AlreadyWatching", async () => {
    const client = await fixture.open();
    client.watch("tenant:acme/twice");

    assert.throws(
      () => client.watch("tenant:acme/twice"),
      (error: any) =>
        error.code === ClientErrorCode.AlreadyWatching &&
        error.data.namespace === "tenant:acme/twice",
    );
  });

  it("nested watches each get a change once", async () => {
    const client = await fixture.open();
    const outer = client.watch("tenant:acme/nested");
    const inner = client.watch("tenant:acme/nested/in");
    await client
      .get({ namespace: "tenant:acme/nested", key: "s" })
      .catch(() => undefined);

    const seqs = await writeMany("tenant:acme/nested/in", 3);
    const [outerChanges, innerChanges] = await Promise.all([
      takeChanges(outer, 3),
      takeChanges(inner, 3),
    ]);

    assert.deepEqual(seqsOf(outerChanges), seqs);
    assert.deepEqual(seqsOf(innerChanges), seqs);
  });

  it("full buffer pauses and resumes without loss", async () => {
    const client = await fixture.open({ maxBufferedChanges: 4 });
    const namespace = "tenant:acme/bounded";
    const resumes: number[] = [];
    const watch = client.watch(namespace, {
      onResume: ({ fromSeq }) => resumes.push(fromSeq),
    });
    await client.get({ namespace, key: "sync" }).catch(() => undefined);

    const seqs = await writeMany(namespace, 30);
    await client.get({ namespace, key: "k1" });
    const changes = await takeChanges(watch, 30);

    assert.deepEqual(seqsOf(changes), seqs);
    assert.ok(resumes.length >= 1, "the watch resubscribed at least once");
  });

  it("revoked key ends the watch with Unauthorized", async () => {
    const revocable = await createKey(fixture.store.store, { tenant: "acme" });
    const client = await fixture.open({ apiKey: revocable.key });
    const watch = client.watch("tenant:acme/revoked");
    await client
      .get({ namespace: "tenant:acme/revoked", key: "s" })
      .catch(() => undefined);

    await revokeKey(fixture.store.store, revocable.id);
    const error = await withTimeout(
      kvErrorOf(watch.next()),
      5_000,
      "the watch error",
    );

    assert.equal(error.code, ErrorCode.Unauthorized);
    assert.equal(error.data?.closeCode, 4401);
    assert.equal(client.state, "closed");
  });

  it("invalid key fails the watch", async () => {
    const client = await fixture.open({ apiKey: "kvs_nosuchkey_secret" });

    const error = await kvErrorOf(client.watch("tenant:acme/x").next());

    assert.equal(error.code, ErrorCode.Unauthorized);
  });

  it("concurrent next calls get successive changes", async () => {
    const client = await fixture.open();
    const namespace = "tenant:acme/concurrent";
    const watch = client.watch(namespace);
    await client.get({ namespace, key: "sync" }).catch(() => undefined);
    const first = watch.next();
    const second = watch.next();

    const seqs = await writeMany(namespace, 2);
    const results = await withTimeout(
      Promise.all([first, second]),
      5_000,
      "both changes",
    );

    assert.deepEqual(
      results.map((result) => result.value?.seq),
      seqs,
    );
  });

  it("close ends a waiting iteration", async () => {
    const client = await fixture.open();
    const watch = client.watch("tenant:acme/closing");
    const next = watch.next();

    await client.close();

    assert.deepEqual(await next, { value: undefined, done: true });
  });
});
