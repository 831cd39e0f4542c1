import assert from "node:assert/strict";
import { describe, test } from "node:test";

import fc from "fast-check";

import { decodeCursor, encodeCursor } from "../../src/methods/cursor.js";
import { listMethod } from "../../src/methods/list.js";
import { namespacesMethod } from "../../src/methods/namespaces.js";
import { ErrorCode, RpcError } from "../../src/protocol/errors.js";

const limits = { maxValueBytes: 64 * 1024 };

function expectInvalidCursor(run: () => unknown): RpcError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof RpcError, String(error));
    assert.equal(error.code, ErrorCode.InvalidParams);
    assert.ok(error.message.toLowerCase().includes("cursor"), error.message);
    return error;
  }
  assert.fail("expected -32602 for the cursor");
}

describe("encodeCursor and decodeCursor", () => {
  test("round trip returns the position", () => {
    const cursor = encodeCursor(["list", "tenant:acme", "p", "p/last"]);
    assert.equal(decodeCursor(cursor, ["list", "tenant:acme", "p"]), "p/last");
  });

  test("cursor is URL-safe text", () => {
    const cursor = encodeCursor(["list", "tenant:acme/😀", "", "\u{10FFFF}ü"]);
    assert.match(cursor, /^[A-Za-z0-9_-]+$/);
  });

  test("property: round trip of any parts", () => {
    const part = fc.string({ unit: "grapheme", maxLength: 20 });
    fc.assert(
      fc.property(
        fc.array(part, { maxLength: 3 }),
        part,
        (expected, position) => {
          const cursor = encodeCursor([...expected, position]);
          assert.equal(decodeCursor(cursor, expected), position);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("another namespace rejected", () => {
    const cursor = encodeCursor(["list", "tenant:acme", "", "k"]);
    expectInvalidCursor(() =>
      decodeCursor(cursor, ["list", "tenant:acme2", ""]),
    );
    expectInvalidCursor(() =>
      decodeCursor(cursor, ["list", "tenant:acme/x", ""]),
    );
  });

  test("another prefix rejected", () => {
    const cursor = encodeCursor(["list", "tenant:acme", "a", "ab"]);
    expectInvalidCursor(() =>
      decodeCursor(cursor, ["list", "tenant:acme", "b"]),
    );
    expectInvalidCursor(() =>
      decodeCursor(cursor, ["list", "tenant:acme", ""]),
    );
  });

  test("another listing kind rejected", () => {
    const cursor = encodeCursor(["namespaces", "tenant:acme", "tenant:acme/x"]);
    expectInvalidCursor(() => decodeCursor(cursor, ["list", "tenant:acme"]));
  });

  test("garbage rejected", () => {
    for (const garbage of [
      "x",
      "not a cursor",
      "%%%",
      "abc=",
      "bnVsbA",
      Buffer.from("[1,2,3]").toString("base64url"),
      Buffer.from('"k"').toString("base64url"),
      Buffer.from('["list","tenant:acme",""]').toString("base64url"),
      Buffer.from('["list","tenant:acme","","k","extra"]').toString(
        "base64url",
      ),
      Buffer.from('["list","tenant:acme","",5]').toString("base64url"),
      Buffer.from("{").toString("base64url"),
      Buffer.from([0xff, 0xfe, 0x00]).toString("base64url"),
    ]) {
      expectInvalidCursor(() =>
        decodeCursor(garbage, ["list", "tenant:acme", ""]),
      );
    }
  });

  test("tampered cursor rejected", () => {
    const cursor = encodeCursor(["list", "tenant:acme", "", "k"]);
    const tampered = `${cursor.slice(0, 4)}${cursor[4] === "A" ? "B" : "A"}${cursor.slice(5)}`;
    expectInvalidCursor(() =>
      decodeCursor(tampered, ["list", "tenant:acme", ""]),
    );
  });

  test("rejection carries no data", () => {
    const error = expectInvalidCursor(() =>
      decodeCursor("x", ["list", "tenant:acme", ""]),
    );
    assert.equal(error.data, undefined);
  });
});

describe("kv/list cursor parameter", () => {
  const first = encodeCursor(["list", "tenant:acme", "user:", "user:1"]);

  test("cursor from the same listing", () => {
    const parsed = listMethod.parse(
      { namespace: "tenant:acme", prefix: "user:", cursor: first },
      limits,
    );
    assert.equal(parsed.afterKey, "user:1");
  });

  test("null or absent cursor starts over", () => {
    assert.equal(
      listMethod.parse({ namespace: "tenant:acme", cursor: null }, limits)
        .afterKey,
      null,
    );
    assert.equal(
      listMethod.parse({ namespace: "tenant:acme" }, limits).afterKey,
      null,
    );
  });

  test("empty cursor is malformed", () => {
    expectInvalidCursor(() =>
      listMethod.parse({ namespace: "tenant:acme", cursor: "" }, limits),
    );
  });

  test("cursor for another namespace", () => {
    expectInvalidCursor(() =>
      listMethod.parse(
        { namespace: "tenant:acme2", prefix: "user:", cursor: first },
        limits,
      ),
    );
  });

  test("cursor for another prefix", () => {
    expectInvalidCursor(() =>
      listMethod.parse(
        { namespace: "tenant:acme", prefix: "user", cursor: first },
        limits,
      ),
    );
    expectInvalidCursor(() =>
      listMethod.parse({ namespace: "tenant:acme", cursor: first }, limits),
    );
  });

  test("kv/namespaces cursor not accepted", () => {
    const cursor = encodeCursor(["namespaces", "tenant:acme", "tenant:acme/x"]);
    expectInvalidCursor(() =>
      listMethod.parse({ namespace: "tenant:acme", cursor }, limits),
    );
  });
});

describe("kv/namespaces cursor parameter", () => {
  test("cursor round trip", () => {
    const cursor = encodeCursor(["namespaces", "tenant:acme", "tenant:acme/x"]);
    const parsed = namespacesMethod.parse(
      { namespace: "tenant:acme", cursor },
      limits,
    );
    assert.equal(parsed.afterNamespace, "tenant:acme/x");
  });

  test("cursor for another namespace", () => {
    const cursor = encodeCursor(["namespaces", "tenant:acme", "tenant:acme/x"]);
    expectInvalidCursor(() =>
      namespacesMethod.parse({ namespace: "tenant:acme/x", cursor }, limits),
    );
  });

  test("kv/list cursor not accepted", () => {
    const cursor = encodeCursor(["list", "tenant:acme", "tenant:acme/x"]);
    expectInvalidCursor(() =>
      namespacesMethod.parse({ namespace: "tenant:acme", cursor }, limits),
    );
  });

  test("garbage and empty rejected", () => {
    expectInvalidCursor(() =>
      namespacesMethod.parse({ namespace: "tenant:acme", cursor: "" }, limits),
    );
    expectInvalidCursor(() =>
      namespacesMethod.parse(
        { namespace: "tenant:acme", cursor: "!!" },
        limits,
      ),
    );
  });
});
