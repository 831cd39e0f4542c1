import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { SqliteStore } from "../../src/store/sqlite.js";

let dir: string;
let store: SqliteStore;

/** Runs one pruning pass now instead of waiting for the timer. */
function prune(target: SqliteStore): void {
  (target as unknown as { pruneHistory(): void }).pruneHistory();
}

async function writeChanges(count: number): Promise<void> {
  for (let index = 0; index < count; index++) {
    await store.write({
      tenantId: "acme",
      actor: "test",
      reportIndex: false,
      operations: [
        {
          op: "set",
          namespace: "tenant:acme/held",
          key: `k${index % 5}`,
          valueJson: String(index),
        },
      ],
    });
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvstream-hold-"));
  store = new SqliteStore({
    path: join(dir, "store.db"),
    historyChanges: 10,
    historySeconds: 0,
    pruneIntervalMs: 0,
  });
  await writeChanges(50);
});

after(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

test("hold keeps history from pruning", async () => {
  const hold = store.holdHistory("acme", 5);
  prune(store);
  assert.equal((await store.historyBounds("acme")).oldestSeq, 6);

  hold.moveTo(30);
  prune(store);
  assert.equal((await store.historyBounds("acme")).oldestSeq, 31);

  hold.release();
  prune(store);
  assert.equal((await store.historyBounds("acme")).oldestSeq, 41);
});

test("released hold allows full pruning", async () => {
  const hold = store.holdHistory("acme", 0);
  hold.release();
  hold.release();
  await writeChanges(20);
  prune(store);
  const bounds = await store.historyBounds("acme");
  assert.equal(bounds.latestSeq, 70);
  assert.equal(bounds.oldestSeq, 61);
});
