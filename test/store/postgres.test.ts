import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { ErrorCode, RpcError } from "../../src/protocol/errors.js";
import { PostgresStore } from "../../src/store/postgres.js";
import { migratePostgres } from "../../src/store/postgres-schema.js";
import type {
  Change,
  WriteOperation,
  WriteRequest,
} from "../../src/store/store.js";
import {
  connectAdmin,
  createTestSchema,
  holdLock,
  skipWithoutPostgres,
  type TestSchema,
} from "../support/postgres-admin.js";
import { delay } from "../support/watch-helpers.js";

const schemas: TestSchema[] = [];
const stores: PostgresStore[] = [];

after(async () => {
  for (const store of stores) await store.close();
  for (const schema of schemas) await schema.drop();
});

function newSchema(): TestSchema {
  const schema = createTestSchema("store");
  schemas.push(schema);
  return schema;
}

async function openStore(
  schema: TestSchema,
  options: Partial<Parameters<typeof PostgresStore.open>[0]> = {},
): Promise<PostgresStore> {
  const store = await PostgresStore.open({
    url: schema.url,
    schema: schema.name,
    historyChanges: 100_000,
    historySeconds: 86_400,
    pruneIntervalMs: 0,
    ...options,
  });
  stores.push(store);
  return store;
}

function setOp(
  namespace: string,
  key: string,
  value: unknown,
  cas?: number,
): WriteOperation {
  const operation: WriteOperation = {
    op: "set",
    namespace,
    key,
    valueJson: JSON.stringify(value),
  };
  if (cas !== undefined) operation.cas = cas;
  return operation;
}

function deleteOp(namespace: string, key: string, cas?: number) {
  const operation: WriteOperation = { op: "delete", namespace, key };
  if (cas !== undefined) operation.cas = cas;
  return operation;
}

function request(
  operations: WriteOperation[],
  options: { tenantId?: string; reportIndex?: boolean } = {},
): WriteRequest {
  return {
    tenantId: options.tenantId ?? "acme",
    actor: "tester",
    operations,
    reportIndex: options.reportIndex ?? false,
  };
}

async function rejection(promise: Promise<unknown>): Promise<RpcError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RpcError, `not an RpcError: ${error}`);
    return error;
  }
  assert.fail("the promise resolved");
}

const ns = "tenant:acme/app";

describe("PostgreSQL store", { skip: skipWithoutPostgres }, () => {
  test("versions and tombstones", async () => {
    const store = await openStore(newSchema());
    const [created] = await store.write(request([setOp(ns, "k", 1)]));
    assert.equal(created.version, 1);
    assert.equal(created.seq, 1);

    const [deleted] = await store.write(request([deleteOp(ns, "k")]));
    assert.equal(deleted.version, 2);
    assert.equal(deleted.op, "delete");
    assert.equal(deleted.valueJson, undefined);
    assert.equal(await store.get(ns, "k"), null);

    const [again] = await store.write(request([setOp(ns, "k", 3)]));
    assert.equal(again.version, 3, "a version is never reused");
    assert.equal(again.seq, 3);
  });

  test("CAS conflict and create-only", async () => {
    const store = await openStore(newSchema());
    await store.write(request([setOp(ns, "k", 1, 0)]));
    const conflict = await rejection(
      store.write(request([setOp(ns, "k", 2, 0)])),
    );
    assert.equal(conflict.code, ErrorCode.CasConflict);
    assert.deepEqual(conflict.data, {
      namespace: ns,
      key: "k",
      expected: 0,
      actual: 1,
    });

    await store.write(request([deleteOp(ns, "k", 1)]));
    const onTombstone = await rejection(
      store.write(request([setOp(ns, "k", 2, 2)])),
    );
    assert.equal(onTombstone.data?.actual, 0, "a deleted key has version 0");

    const missing = await rejection(store.write(request([deleteOp(ns, "x")])));
    assert.equal(missing.code, ErrorCode.NotFound);
    assert.equal(await store.latestSeq("acme"), 2, "failures take no seq");
  });

  test("batch is atomic with index", async () => {
    const store = await openStore(newSchema());
    const failure = await rejection(
      store.write(
        request([setOp(ns, "a", 1), setOp(ns, "b", 1, 5)], {
          reportIndex: true,
        }),
      ),
    );
    assert.equal(failure.code, ErrorCode.CasConflict);
    assert.equal(failure.data?.index, 1);
    assert.equal(await store.get(ns, "a"), null, "nothing was written");
    assert.equal((await store.historyBounds("acme")).latestSeq, 0);

    const changes = await store.write(
      request([setOp(ns, "a", 1), setOp(ns, "a", 2), deleteOp(ns, "a")]),
    );
    assert.deepEqual(
      changes.map((change) => [change.seq, change.version, change.op]),
      [
        [1, 1, "set"],
        [2, 2, "set"],
        [3, 3, "delete"],
      ],
    );
  });

  test("group commit isolates failures", async () => {
    const store = await openStore(newSchema());
    const outcomes = await Promise.allSettled([
      store.write(request([setOp(ns, "k", 1)])),
      store.write(request([setOp(ns, "k", 2, 7)])),
      store.write(request([setOp(ns, "k", 3, 1)])),
      store.write(
        request([setOp("tenant:beta/x", "k", 1)], { tenantId: "beta" }),
      ),
    ]);
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      ["fulfilled", "rejected", "fulfilled", "fulfilled"],
    );
    const entry = await store.get(ns, "k");
    assert.equal(entry?.valueJson, "3");
    assert.equal(entry?.version, 2);
    assert.equal(await store.latestSeq("acme"), 2);
    assert.equal(await store.latestSeq("beta"), 1, "seq is per tenant");
  });

  test("list orders by UTF-8 bytes", async () => {
    const store = await openStore(newSchema());
    const keys = ["b", "a", "ab", "a\u00ff", "a\u{1F600}", "Z", "a/"];
    await store.write(request(keys.map((key) => setOp(ns, key, key))));
    await store.write(request([deleteOp(ns, "ab")]));

    const all = await store.list({
      namespace: ns,
      prefix: "",
      afterKey: null,
      limit: 100,
      maxBytes: 1 << 20,
    });
    const expected = keys
      .filter((key) => key !== "ab")
      .sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    assert.deepEqual(
      all.items.map((item) => item.key),
      expected,
    );

    const prefixed = await store.list({
      namespace: ns,
      prefix: "a",
      afterKey: "a/",
      limit: 1,
      maxBytes: 1 << 20,
    });
    assert.deepEqual(
      prefixed.items.map((item) => item.key),
      ["a\u00ff"],
    );
    assert.equal(prefixed.more, true);
  });

  test("namespace counts follow live keys", async () => {
    const store = await openStore(newSchema());
    await store.write(
      request([
        setOp("tenant:acme/a", "1", 1),
        setOp("tenant:acme/a", "2", 1),
        setOp("tenant:acme/a/b", "1", 1),
        setOp("tenant:acme0", "1", 1),
      ]),
    );
    await store.write(request([deleteOp("tenant:acme/a/b", "1")]));
    const page = await store.namespaces({
      namespace: "tenant:acme",
      afterNamespace: null,
      limit: 10,
    });
    assert.deepEqual(page.items, [{ namespace: "tenant:acme/a", keys: 2 }]);
  });

  test("migrations are idempotent", async () => {
    const schema = newSchema();
    const admin = connectAdmin();
    const other = connectAdmin();
    try {
      const applied = await Promise.all([
        migratePostgres(admin, schema.name),
        migratePostgres(other, schema.name),
      ]);
      assert.deepEqual(
        applied.sort(),
        [0, 1],
        "two processes starting together apply each step once",
      );
      assert.equal(await migratePostgres(admin, schema.name), 0);
      const rows = await admin.unsafe(
        `SELECT version FROM "${schema.name}".schema_migrations`,
      );
      assert.equal(rows.length, 1);
    } finally {
      await admin.end({ timeout: 1 });
      await other.end({ timeout: 1 });
    }
  });

  test("two stores share one schema", async () => {
    const schema = newSchema();
    const first = await openStore(schema);
    // The periodic catch-up is pushed out of the test's time, so only
    // notifications can deliver the first store's changes here.
    const second = await openStore(schema, { catchUpIntervalMs: 60_000 });
    assert.equal(first.storeId, second.storeId);

    const seen: Change[] = [];
    second.onCommit((changes) => seen.push(...changes));
    assert.equal(await second.latestSeq("acme"), 0);

    const writes: Array<Promise<Change[]>> = [];
    for (let index = 0; index < 40; index++) {
      const store = index % 2 === 0 ? first : second;
      writes.push(store.write(request([setOp(ns, `k${index % 5}`, index)])));
    }
    const results = (await Promise.all(writes)).flat();
    assert.deepEqual(
      results.map((change) => change.seq).sort((x, y) => x - y),
      Array.from({ length: 40 }, (_, index) => index + 1),
      "seqs are gapless and unique across processes",
    );

    for (let attempt = 0; attempt < 100 && seen.length < 40; attempt++) {
      await delay(50);
    }
    assert.deepEqual(
      seen.map((change) => change.seq),
      Array.from({ length: 40 }, (_, index) => index + 1),
      "every change reaches the listener once, in seq order",
    );
    const bySeq = new Map(results.map((change) => [change.seq, change]));
    for (const change of seen) {
      assert.deepEqual(change, bySeq.get(change.seq));
    }
  });

  test("API keys across stores", async () => {
    const schema = newSchema();
    const first = await openStore(schema);
    const second = await openStore(schema);
    const before = await second.apiKeysVersion();
    await first.createApiKey({
      hash: "h1",
      record: {
        id: "id1",
        tenantId: "acme",
        role: "agent",
        scope: null,
        name: "n",
        createdAt: 1,
        revokedAt: null,
      },
    });
    assert.equal((await second.findApiKey("h1"))?.id, "id1");
    assert.equal(await first.revokeApiKey("id1", 5), true);
    assert.equal(await first.revokeApiKey("id1", 6), true);
    assert.equal(await first.revokeApiKey("nope", 6), false);
    assert.equal((await second.findApiKey("h1"))?.revokedAt, 5);
    assert.equal(await second.apiKeysVersion(), before + 2);
    await second.checkWritable();
  });

  test("first API key once across stores", async () => {
    const schema = newSchema();
    const opened = await Promise.all([1, 2, 3].map(() => openStore(schema)));
    const before = await opened[0].apiKeysVersion();
    const newKey = (index: number) => ({
      hash: `first-${index}`,
      record: {
        id: `first${index}`,
        tenantId: "demo",
        role: "service" as const,
        scope: null,
        name: "demo",
        createdAt: index,
        revokedAt: null,
      },
    });

    const created = await Promise.all(
      opened.map((store, index) => store.createFirstApiKey(newKey(index))),
    );
    const keys = await opened[0].listApiKeys();
    const later = await opened[1].createFirstApiKey(newKey(9));

    assert.equal(
      created.filter((wasCreated) => wasCreated).length,
      1,
      `exactly one store created a key: ${created}`,
    );
    assert.equal(keys.length, 1, "one key in the schema");
    assert.equal(keys[0].id, `first${created.indexOf(true)}`);
    assert.equal(later, false, "no key once one exists");
    assert.equal(await opened[2].apiKeysVersion(), before + 1);
  });

  test("pruning keeps held history", async () => {
    const store = await openStore(newSchema(), {
      historyChanges: 3,
      historySeconds: 0,
      pruneIntervalMs: 20,
    });
    const hold = store.holdHistory("acme", 2);
    for (let index = 0; index < 10; index++) {
      await store.write(request([setOp(ns, "k", index)]));
    }
    // A prune during the writes may leave oldestSeq below 3, and the hold
    // keeps it from passing 3.
    for (let attempt = 0; attempt < 100; attempt++) {
      if ((await store.historyBounds("acme")).oldestSeq >= 3) break;
      await delay(20);
    }
    await delay(100);
    assert.equal((await store.historyBounds("acme")).oldestSeq, 3);

    hold.release();
    let bounds = await store.historyBounds("acme");
    for (let attempt = 0; attempt < 100 && bounds.oldestSeq < 8; attempt++) {
      await delay(20);
      bounds = await store.historyBounds("acme");
    }
    assert.deepEqual(bounds, { oldestSeq: 8, latestSeq: 10 });
    const retained = await store.readChanges({
      tenantId: "acme",
      namespace: "tenant:acme",
      afterSeq: 0,
      uptoSeq: 10,
      limit: 100,
    });
    assert.deepEqual(
      retained.map((change) => change.seq),
      [8, 9, 10],
    );
  });

  test("timed-out write is not applied", async () => {
    const schema = newSchema();
    const store = await openStore(schema);
    await store.write(request([setOp(ns, "k", 1)]));

    // An admin session locks the tenant's row, so the store's transaction
    // waits on the lock past the write's deadline.
    const lock = await holdLock(
      `SELECT 1 FROM "${schema.name}".tenants WHERE tenant_id = 'acme' FOR UPDATE`,
    );
    try {
      const error = await rejection(
        store.write(request([setOp(ns, "k", 2, 1)])),
      );
      assert.equal(error.code, ErrorCode.StoreUnavailable);
      assert.match(
        String((error.data as { reason: string }).reason),
        /not applied/,
      );
      // Keeps the lock a little longer, as a slow outage would.
      await delay(300);
    } finally {
      await lock.release();
    }

    // Commits run one at a time, so this write starts only after the
    // timed-out transaction has ended.
    await store.write(request([setOp(ns, "other", 1)]));
    const entry = await store.get(ns, "k");
    assert.equal(entry?.valueJson, "1", "the timed-out value is absent");
    assert.equal(entry?.version, 1);
    const [retried] = await store.write(request([setOp(ns, "k", 2, 1)]));
    assert.equal(retried.version, 2, "a retry with the same cas succeeds");
  });

  test("slow COMMIT: outcome unknown", async () => {
    const schema = newSchema();
    const store = await openStore(schema, { requestTimeoutMs: 1500 });
    await store.write(request([setOp(ns, "k", 1)]));

    // A deferred trigger runs inside COMMIT, so the COMMIT of a write to
    // key "slow" is still in flight at the deadline and at the end of the
    // extra wait. The transaction's statement_timeout does not cancel it
    // (seen with psql on PostgreSQL 15).
    const admin = connectAdmin();
    try {
      await admin.unsafe(`
        CREATE FUNCTION "${schema.name}".slow_commit() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.key = 'slow' THEN PERFORM pg_sleep(4); END IF;
          RETURN NULL;
        END $$
      `);
      await admin.unsafe(`
        CREATE CONSTRAINT TRIGGER slow_commit
        AFTER INSERT OR UPDATE ON "${schema.name}".entries
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        EXECUTE FUNCTION "${schema.name}".slow_commit()
      `);
    } finally {
      await admin.end({ timeout: 1 });
    }

    const error = await rejection(store.write(request([setOp(ns, "slow", 1)])));
    assert.equal(error.code, ErrorCode.StoreUnavailable);
    assert.match(
      String((error.data as { reason: string }).reason),
      /outcome is unknown/,
    );

    // Commits run one at a time, so this write waits for the slow COMMIT.
    await store.write(request([setOp(ns, "other", 1)]));
    const entry = await store.get(ns, "slow");
    assert.equal(entry?.version, 1, "the write committed after its -32001");
  });

  test("slow read outlasts request timeout", async () => {
    const schema = newSchema();
    const store = await openStore(schema, { requestTimeoutMs: 200 });
    await store.write(request([setOp(ns, "k", 1)]));

    // The lock blocks reads of the table on a live connection, which is a
    // slow database and not an unreachable one.
    const lock = await holdLock(
      `LOCK TABLE "${schema.name}".entries IN ACCESS EXCLUSIVE MODE`,
    );
    const read = store.get(ns, "k");
    // Settles the read's promise now, so a rejection while the lock is
    // held is not reported as unhandled.
    const outcome = Promise.allSettled([read]);
    await delay(600);
    await lock.release();
    const [settled] = await outcome;
    assert.equal(settled.status, "fulfilled", "the slow read succeeds");
    assert.equal((await read)?.valueJson, "1");
  });

  test("unreachable database fails -32001", async () => {
    const schema = newSchema();
    const url = new URL(schema.url);
    url.port = "1";
    await assert.rejects(
      PostgresStore.open({
        url: url.toString(),
        schema: schema.name,
        historyChanges: 100_000,
        historySeconds: 86_400,
      }),
      (error: RpcError) => error.code === ErrorCode.StoreUnavailable,
    );
  });
});
