import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ClientErrorCode, ErrorCode } from "../../src/client/index.js";
import { kvErrorOf, waitForState } from "../support/client-helpers.js";
import { useClientServer } from "../support/client-server.js";
import { withTimeout } from "../support/watch-helpers.js";

const fixture = useClientServer({ key: { tenant: "acme" } });
const namespace = "tenant:acme/encoding";

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
      const client = await fixture.open();

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
    const client = await fixture.open();

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
    const client = await fixture.open();
    await fixture.server.kill();
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
    await fixture.restartOnSamePort();
    const written = await withTimeout(valid, 15_000, "the queued write");
    const entry = await client.get({ namespace, key: "queued-valid" });

    assert.equal((await invalid).code, ClientErrorCode.NotSerializable);
    assert.equal(written.version, 1);
    assert.equal(entry.value, 2);
    assert.equal(client.state, "open");
  });
});
