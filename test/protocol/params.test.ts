import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ErrorCode, RpcError } from "../../src/protocol/errors.js";
import {
  checkActor,
  checkJsonText,
  checkKey,
  checkNamespace,
  checkPrefix,
  checkSchema,
  forEachEntry,
  serializeValue,
} from "../../src/protocol/params.js";
import {
  BatchDeleteOperation,
  BatchSetOperation,
  GetParams,
  ListParams,
  MgetEntry,
  SetParams,
  SubscribeParams,
} from "../../src/protocol/schemas.js";

/** Runs `run`, expects an RpcError with `code`, and returns it. */
function expectRpcError(run: () => unknown, code: number): RpcError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof RpcError, String(error));
    assert.equal(error.code, code);
    return error;
  }
  assert.fail("expected an RpcError");
}

function expectInvalidParams(run: () => unknown): RpcError {
  return expectRpcError(run, ErrorCode.InvalidParams);
}

describe("checkSchema", () => {
  test("valid params pass", () => {
    assert.doesNotThrow(() =>
      checkSchema(GetParams, { namespace: "tenant:a", key: "k" }),
    );
    assert.doesNotThrow(() =>
      checkSchema(SetParams, {
        namespace: "tenant:a",
        key: "k",
        value: null,
        cas: 0,
        actor: "a",
      }),
    );
    assert.doesNotThrow(() =>
      checkSchema(ListParams, { namespace: "tenant:a", cursor: null }),
    );
  });

  test("missing parameter is named", () => {
    const error = expectInvalidParams(() =>
      checkSchema(GetParams, { namespace: "tenant:a" }),
    );
    assert.ok(error.message.includes("'key'"), error.message);
    assert.ok(/missing/i.test(error.message), error.message);
  });

  test("missing value is named", () => {
    const error = expectInvalidParams(() =>
      checkSchema(SetParams, { namespace: "tenant:a", key: "k" }),
    );
    assert.ok(error.message.includes("'value'"), error.message);
  });

  test("null value is present", () => {
    assert.doesNotThrow(() =>
      checkSchema(SetParams, { namespace: "tenant:a", key: "k", value: null }),
    );
  });

  test("unknown parameter is named", () => {
    const error = expectInvalidParams(() =>
      checkSchema(SetParams, {
        namespace: "tenant:a",
        key: "k",
        value: 1,
        Cas: 1,
      }),
    );
    assert.ok(error.message.includes("'Cas'"), error.message);
    assert.ok(/unknown/i.test(error.message), error.message);
  });

  test("wrong type is named", () => {
    const error = expectInvalidParams(() =>
      checkSchema(GetParams, { namespace: "tenant:a", key: 5 }),
    );
    assert.ok(error.message.includes("'key'"), error.message);
  });

  test("invalid cas values", () => {
    for (const cas of [-1, 1.5, "1", null, 2 ** 53]) {
      const error = expectInvalidParams(() =>
        checkSchema(SetParams, {
          namespace: "tenant:a",
          key: "k",
          value: 1,
          cas,
        }),
      );
      assert.ok(error.message.includes("'cas'"), `${cas}: ${error.message}`);
    }
  });

  test("cas at max safe integer passes", () => {
    assert.doesNotThrow(() =>
      checkSchema(SetParams, {
        namespace: "tenant:a",
        key: "k",
        value: 1,
        cas: Number.MAX_SAFE_INTEGER,
      }),
    );
  });

  test("limit outside 1 to 1,000", () => {
    for (const limit of [0, 1001, 1.5, "10"]) {
      const error = expectInvalidParams(() =>
        checkSchema(ListParams, { namespace: "tenant:a", limit }),
      );
      assert.ok(
        error.message.includes("'limit'"),
        `${limit}: ${error.message}`,
      );
    }
    assert.doesNotThrow(() =>
      checkSchema(ListParams, { namespace: "tenant:a", limit: 1 }),
    );
    assert.doesNotThrow(() =>
      checkSchema(ListParams, { namespace: "tenant:a", limit: 1000 }),
    );
  });

  test("cursor of the wrong type", () => {
    const error = expectInvalidParams(() =>
      checkSchema(ListParams, { namespace: "tenant:a", cursor: 5 }),
    );
    assert.ok(error.message.includes("'cursor'"), error.message);
  });

  test("fromSeq must be a non-negative integer", () => {
    for (const fromSeq of [-1, 0.5, "3"]) {
      const error = expectInvalidParams(() =>
        checkSchema(SubscribeParams, { namespace: "tenant:a", fromSeq }),
      );
      assert.ok(error.message.includes("'fromSeq'"), error.message);
    }
  });

  test("non-object params rejected", () => {
    for (const params of [
      null,
      [],
      ["tenant:a", "k"],
      "x",
      1,
      true,
      undefined,
    ]) {
      const error = expectInvalidParams(() => checkSchema(GetParams, params));
      assert.ok(error.message.startsWith("params"), error.message);
    }
  });

  test("entry position prefixes names", () => {
    const unknown = expectInvalidParams(() =>
      checkSchema(
        BatchDeleteOperation,
        { op: "delete", namespace: "tenant:a", key: "k", value: 1 },
        "operations[2]",
      ),
    );
    assert.ok(
      unknown.message.includes("'operations[2].value'"),
      unknown.message,
    );

    const missing = expectInvalidParams(() =>
      checkSchema(
        BatchSetOperation,
        { op: "set", namespace: "tenant:a", key: "k" },
        "operations[0]",
      ),
    );
    assert.ok(
      missing.message.includes("'operations[0].value'"),
      missing.message,
    );

    const notObject = expectInvalidParams(() =>
      checkSchema(MgetEntry, "x", "keys[3]"),
    );
    assert.ok(notObject.message.startsWith("keys[3]"), notObject.message);
  });

  test("schema errors carry no data", () => {
    const error = expectInvalidParams(() => checkSchema(GetParams, {}));
    assert.equal(error.data, undefined);
  });
});

describe("forEachEntry", () => {
  test("adds the failing index", () => {
    const error = expectInvalidParams(() =>
      forEachEntry(
        [{ namespace: "tenant:a", key: "k" }, { namespace: "tenant:a" }],
        (entry) => checkSchema(MgetEntry, entry),
      ),
    );
    assert.deepEqual(error.data, { index: 1 });
  });

  test("keeps existing data", () => {
    const error = expectInvalidParams(() =>
      forEachEntry([1, 2, 3], (entry) => {
        if (entry === 3) serializeValue("xxxx", 2);
        return entry;
      }),
    );
    assert.deepEqual(error.data, { limit: 2, size: 6, index: 2 });
  });

  test("returns checked entries in order", () => {
    assert.deepEqual(
      forEachEntry(["a", "b"], (entry, index) => `${entry}${index}`),
      ["a0", "b1"],
    );
  });

  test("other errors pass through", () => {
    const failure = new TypeError("boom");
    assert.throws(
      () =>
        forEachEntry([1], () => {
          throw failure;
        }),
      (error) => error === failure,
    );
  });
});

describe("serializeValue", () => {
  test("returns compact JSON", () => {
    assert.equal(
      serializeValue({ a: [1, "x"], b: null }, 100),
      '{"a":[1,"x"],"b":null}',
    );
    assert.equal(serializeValue(null, 100), "null");
  });

  test("value of exactly the limit", () => {
    // Eight x characters in quotes: 10 bytes.
    assert.equal(serializeValue("x".repeat(8), 10), `"${"x".repeat(8)}"`);
  });

  test("value one byte over the limit", () => {
    const error = expectInvalidParams(() => serializeValue("x".repeat(9), 10));
    assert.deepEqual(error.data, { limit: 10, size: 11 });
  });

  test("limit counts UTF-8 bytes", () => {
    // Quotes plus four 2-byte characters: 10 bytes in 6 UTF-16 units.
    assert.equal(serializeValue("éééé", 10), '"éééé"');
    const error = expectInvalidParams(() => serializeValue("ééééé", 10));
    assert.deepEqual(error.data, { limit: 10, size: 12 });

    const astral = expectInvalidParams(() => serializeValue(["😀😀"], 10));
    assert.deepEqual(astral.data, { limit: 10, size: 12 });
  });

  test("escapes count as sent", () => {
    // JSON.stringify("\u0000") is the 8 bytes "\u0000" in quotes.
    assert.equal(serializeValue("\u0000", 8), '"\\u0000"');
    const error = expectInvalidParams(() => serializeValue("\u0000", 7));
    assert.deepEqual(error.data, { limit: 7, size: 8 });
  });

  test("default 64 KiB boundary", () => {
    const limit = 64 * 1024;
    const fits = { v: "a".repeat(limit - 8) };
    assert.equal(Buffer.byteLength(JSON.stringify(fits)), limit);
    assert.equal(serializeValue(fits, limit), JSON.stringify(fits));

    const over = { v: "a".repeat(limit - 7) };
    const error = expectInvalidParams(() => serializeValue(over, limit));
    assert.deepEqual(error.data, { limit, size: limit + 1 });
  });

  test("message states size and limit", () => {
    const error = expectInvalidParams(() => serializeValue("x".repeat(9), 10));
    assert.ok(error.message.includes("11"), error.message);
    assert.ok(error.message.includes("10"), error.message);
  });
});

describe("name checks", () => {
  test("checkNamespace throws invalid params", () => {
    const error = expectInvalidParams(() => checkNamespace("tenant:a/.."));
    assert.ok(error.message.includes("namespace"), error.message);
    assert.doesNotThrow(() => checkNamespace("tenant:a/b"));
  });

  test("checkKey throws invalid params", () => {
    expectInvalidParams(() => checkKey(""));
    expectInvalidParams(() => checkKey("a\u0000"));
    expectInvalidParams(() => checkKey("k".repeat(1025)));
    assert.doesNotThrow(() => checkKey("k".repeat(1024)));
  });

  test("checkPrefix allows empty", () => {
    assert.doesNotThrow(() => checkPrefix(""));
    expectInvalidParams(() => checkPrefix("p\n"));
  });

  test("checkActor allows absent", () => {
    assert.doesNotThrow(() => checkActor(undefined));
    expectInvalidParams(() => checkActor(""));
    expectInvalidParams(() => checkActor("a".repeat(257)));
    assert.doesNotThrow(() => checkActor("a".repeat(256)));
  });

  test("checkJsonText rejects lone surrogates", () => {
    expectInvalidParams(() => checkJsonText({ value: ["\ud800"] }, "params"));
    expectInvalidParams(() =>
      checkJsonText(JSON.parse('{"\\udc00":1}'), "params"),
    );
    expectInvalidParams(() => checkJsonText(JSON.parse("[1e400]"), "params"));
    assert.doesNotThrow(() => checkJsonText({ value: "\u0000ok😀" }, "params"));
  });

  test("long invalid names are shortened", () => {
    const error = expectInvalidParams(() =>
      checkKey(`${"k".repeat(2000)}\u0000`),
    );
    assert.ok(error.message.length < 300, `${error.message.length} characters`);
  });
});
