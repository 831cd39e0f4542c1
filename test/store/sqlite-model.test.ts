import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import fc from "fast-check";

import { RpcError } from "../../src/protocol/errors.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { WriteOperation, WriteRequest } from "../../src/store/store.js";

/**
 * Compares the SQLite store with a plain in-memory model of the protocol's
 * write rules: random requests, flushed together in one group commit,
 * must give the same results, errors, versions, seqs and final state.
 */

const namespaces = ["tenant:acme/a", "tenant:acme/b"];
const keys = ["k1", "k2", "k3"];

interface ModelEntry {
  version: number;
  value: string | null;
}

class Model {
  readonly entries = new Map<string, ModelEntry>();
  seq = 0;

  /** Applies a request atomically; returns versions or the error code and index. */
  apply(
    request: WriteRequest,
  ): { versions: number[] } | { code: number; index?: number } {
    const staged = new Map<string, ModelEntry>();
    const versions: number[] = [];
    for (const [index, operation] of request.operations.entries()) {
      const id = `${operation.namespace}\u0000${operation.key}`;
      const entry = staged.get(id) ?? this.entries.get(id);
      const live = entry !== undefined && entry.value !== null;
      const current = live ? entry.version : 0;
      const position = request.reportIndex ? { index } : {};
      if (operation.cas !== undefined && operation.cas !== current) {
        return { code: -32002, ...position };
      }
      if (operation.op === "delete" && !live) {
        return { code: -32004, ...position };
      }
      const version = (entry?.version ?? 0) + 1;
      staged.set(id, {
        version,
        value: operation.op === "set" ? operation.valueJson : null,
      });
      versions.push(version);
    }
    for (const [id, entry] of staged) this.entries.set(id, entry);
    this.seq += versions.length;
    return { versions };
  }
}

const operationArbitrary: fc.Arbitrary<WriteOperation> = fc.oneof(
  fc.record(
    {
      op: fc.constant("set" as const),
      namespace: fc.constantFrom(...namespaces),
      key: fc.constantFrom(...keys),
      valueJson: fc.integer({ min: 0, max: 99 }).map(String),
      cas: fc.integer({ min: 0, max: 4 }),
    },
    { requiredKeys: ["op", "namespace", "key", "valueJson"] },
  ),
  fc.record(
    {
      op: fc.constant("delete" as const),
      namespace: fc.constantFrom(...namespaces),
      key: fc.constantFrom(...keys),
      cas: fc.integer({ min: 0, max: 4 }),
    },
    { requiredKeys: ["op", "namespace", "key"] },
  ),
);

const requestArbitrary = fc.record({
  operations: fc.array(operationArbitrary, { minLength: 1, maxLength: 3 }),
  reportIndex: fc.boolean(),
});

/** Requests in groups; each group is issued in one tick, one commit. */
const scenarioArbitrary = fc.array(
  fc.array(requestArbitrary, { minLength: 1, maxLength: 6 }),
  { minLength: 1, maxLength: 6 },
);

let dir: string;
let run = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvstream-model-"));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("store matches the write model", async () => {
  await fc.assert(
    fc.asyncProperty(scenarioArbitrary, async (groups) => {
      const store = new SqliteStore({
        path: join(dir, `model-${run++}.db`),
        historyChanges: 100_000,
        historySeconds: 86_400,
        pruneIntervalMs: 0,
      });
      const model = new Model();
      try {
        for (const group of groups) {
          const requests: WriteRequest[] = group.map((request) => ({
            tenantId: "acme",
            actor: "model",
            ...request,
          }));
          const expected = requests.map((request) => model.apply(request));
          const outcomes = await Promise.allSettled(
            requests.map((request) => store.write(request)),
          );

          outcomes.forEach((outcome, position) => {
            const want = expected[position];
            if ("versions" in want) {
              assert.equal(outcome.status, "fulfilled");
              const changes = (outcome as PromiseFulfilledResult<any[]>).value;
              assert.deepEqual(
                changes.map((change) => change.version),
                want.versions,
              );
              return;
            }
            assert.equal(outcome.status, "rejected");
            const error = (outcome as PromiseRejectedResult).reason;
            assert.ok(error instanceof RpcError);
            assert.equal(error.code, want.code);
            assert.equal(error.data?.index, want.index);
          });
        }

        assert.equal(await store.latestSeq("acme"), model.seq);
        for (const namespace of namespaces) {
          for (const key of keys) {
            const entry = model.entries.get(`${namespace}\u0000${key}`);
            const stored = await store.get(namespace, key);
            if (!entry || entry.value === null) {
              assert.equal(stored, null);
              continue;
            }
            assert.equal(stored?.version, entry.version);
            assert.equal(stored?.valueJson, entry.value);
          }
        }

        const history = await store.readChanges({
          tenantId: "acme",
          namespace: "tenant:acme",
          afterSeq: 0,
          uptoSeq: model.seq,
          limit: 10_000,
        });
        assert.deepEqual(
          history.map((change) => change.seq),
          Array.from({ length: model.seq }, (_, index) => index + 1),
        );
      } finally {
        await store.close();
      }
    }),
    { numRuns: 60 },
  );
});
