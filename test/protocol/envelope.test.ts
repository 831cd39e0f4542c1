import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  maxBatchEntries,
  parseFrame,
  readEntry,
  type Entry,
  type Frame,
  type InvalidEntry,
  type Request,
} from "../../src/protocol/envelope.js";
import { ErrorCode, RpcError } from "../../src/protocol/errors.js";

function request(id: number): string {
  return JSON.stringify({ jsonrpc: "2.0", id, method: "kv/get", params: {} });
}

function expectRequest(entry: Entry): Request {
  assert.equal(entry.valid, true, JSON.stringify(entry));
  return entry as Request;
}

function expectInvalid(entry: Entry): InvalidEntry {
  assert.equal(entry.valid, false);
  const invalid = entry as InvalidEntry;
  assert.ok(invalid.error instanceof RpcError);
  assert.equal(invalid.error.code, ErrorCode.InvalidRequest);
  return invalid;
}

function expectFrameError(frame: Frame, code: number): RpcError {
  assert.equal(frame.kind, "error");
  const error = (frame as { kind: "error"; error: RpcError }).error;
  assert.ok(error instanceof RpcError);
  assert.equal(error.code, code);
  return error;
}

describe("parseFrame", () => {
  test("invalid JSON is a parse error", () => {
    for (const text of [
      "",
      "{",
      "[1,",
      "{'a':1}",
      "undefined",
      "NaN",
      '{"a":1}x',
      "\u0000",
    ]) {
      expectFrameError(parseFrame(text), ErrorCode.ParseError);
    }
  });

  test("parse error message is a sentence", () => {
    const error = expectFrameError(parseFrame("{"), ErrorCode.ParseError);
    assert.ok(error.message.length > 0);
    assert.equal(error.data, undefined);
  });

  test("single request object", () => {
    const frame = parseFrame(request(1));
    assert.equal(frame.kind, "single");
    const entry = expectRequest((frame as { entry: Entry }).entry);
    assert.equal(entry.id, 1);
    assert.equal(entry.method, "kv/get");
  });

  test("empty batch is invalid request", () => {
    const error = expectFrameError(parseFrame("[]"), ErrorCode.InvalidRequest);
    assert.ok(error.message.length > 0);
  });

  test("batch of 1,000 entries accepted", () => {
    const text = `[${Array.from({ length: maxBatchEntries }, (_, i) => request(i)).join(",")}]`;
    const frame = parseFrame(text);
    assert.equal(frame.kind, "batch");
    const entries = (frame as { entries: Entry[] }).entries;
    assert.equal(entries.length, 1000);
    assert.equal(
      entries.every((entry) => entry.valid),
      true,
    );
  });

  test("batch of 1,001 entries rejected", () => {
    const text = `[${Array.from({ length: maxBatchEntries + 1 }, (_, i) => request(i)).join(",")}]`;
    const error = expectFrameError(parseFrame(text), ErrorCode.InvalidRequest);
    assert.deepEqual(error.data, { limit: 1000 });
  });

  test("batch keeps entry order", () => {
    const frame = parseFrame(`[${request(3)},${request(1)},${request(2)}]`);
    assert.equal(frame.kind, "batch");
    const ids = (frame as { entries: Entry[] }).entries.map(
      (entry) => (entry as Request).id,
    );
    assert.deepEqual(ids, [3, 1, 2]);
  });

  test("batch of non-object entries", () => {
    const frame = parseFrame('[1, "a", null, [], true, {}]');
    assert.equal(frame.kind, "batch");
    const entries = (frame as { entries: Entry[] }).entries;
    assert.equal(entries.length, 6);
    for (const entry of entries) {
      const invalid = expectInvalid(entry);
      assert.equal(invalid.id, null);
    }
  });

  test("batch mixes valid and invalid", () => {
    const frame = parseFrame(`[${request(1)}, 5, {"jsonrpc":"2.0","id":"x"}]`);
    assert.equal(frame.kind, "batch");
    const [first, second, third] = (frame as { entries: Entry[] }).entries;
    assert.equal(expectRequest(first).id, 1);
    assert.equal(expectInvalid(second).id, null);
    assert.equal(expectInvalid(third).id, "x");
  });

  test("nested batch entry is invalid", () => {
    const frame = parseFrame(`[[${request(1)}]]`);
    assert.equal(frame.kind, "batch");
    const [entry] = (frame as { entries: Entry[] }).entries;
    assert.equal(expectInvalid(entry).id, null);
  });

  test("non-object single message", () => {
    for (const text of ["1", '"x"', "null", "true"]) {
      const frame = parseFrame(text);
      assert.equal(frame.kind, "single", text);
      assert.equal(expectInvalid((frame as { entry: Entry }).entry).id, null);
    }
  });

  test("repeated member: the last counts", () => {
    const frame = parseFrame(
      '{"jsonrpc":"2.0","id":1,"method":5,"id":"second","method":"kv/get","params":[],"params":{"a":1}}',
    );
    const entry = expectRequest((frame as { entry: Entry }).entry);
    assert.equal(entry.id, "second");
    assert.equal(entry.method, "kv/get");
    assert.deepEqual(entry.params, { a: 1 });
  });
});

describe("readEntry", () => {
  test("echoes string and number ids", () => {
    for (const id of [
      "abc",
      "",
      "😀",
      0,
      -7,
      1.5,
      1e21,
      Number.MAX_SAFE_INTEGER,
    ]) {
      const entry = expectRequest(
        readEntry({ jsonrpc: "2.0", id, method: "m" }),
      );
      assert.equal(entry.id, id);
    }
  });

  test("id null is a request", () => {
    const entry = expectRequest(
      readEntry({ jsonrpc: "2.0", id: null, method: "m" }),
    );
    assert.equal(Object.hasOwn(entry, "id"), true);
    assert.equal(entry.id, null);
  });

  test("missing id is a notification", () => {
    const entry = expectRequest(readEntry({ jsonrpc: "2.0", method: "m" }));
    assert.equal(Object.hasOwn(entry, "id"), false);
    assert.equal(entry.id, undefined);
  });

  test("invalid id types", () => {
    for (const id of [true, false, {}, [], [1], { a: 1 }]) {
      const invalid = expectInvalid(
        readEntry({ jsonrpc: "2.0", id, method: "m" }),
      );
      assert.equal(invalid.id, null, JSON.stringify(id));
    }
  });

  test("jsonrpc must be exactly 2.0", () => {
    for (const jsonrpc of [undefined, "1.0", "2", 2, 2.0, "2.0 ", null]) {
      const message: Record<string, unknown> = { id: 9, method: "m" };
      if (jsonrpc !== undefined) message.jsonrpc = jsonrpc;
      const invalid = expectInvalid(readEntry(message));
      assert.equal(invalid.id, 9, JSON.stringify(jsonrpc));
    }
  });

  test("method must be a string", () => {
    for (const method of [undefined, 1, null, {}, ["m"]]) {
      const message: Record<string, unknown> = { jsonrpc: "2.0", id: "a" };
      if (method !== undefined) message.method = method;
      const invalid = expectInvalid(readEntry(message));
      assert.equal(invalid.id, "a", JSON.stringify(method));
    }
  });

  test("unknown top-level member rejected", () => {
    const invalid = expectInvalid(
      readEntry({ jsonrpc: "2.0", id: 4, method: "m", extra: 1 }),
    );
    assert.equal(invalid.id, 4);
    assert.ok(invalid.error.message.includes("extra"), invalid.error.message);
  });

  test("unknown member in a notification", () => {
    const invalid = expectInvalid(
      readEntry({ jsonrpc: "2.0", method: "m", Params: {} }),
    );
    assert.equal(invalid.id, null);
  });

  test("__proto__ member is unknown", () => {
    const message = JSON.parse(
      '{"jsonrpc":"2.0","id":5,"method":"m","__proto__":{}}',
    );
    const invalid = expectInvalid(readEntry(message));
    assert.equal(invalid.id, 5);
  });

  test("omitted params read as empty object", () => {
    const entry = expectRequest(
      readEntry({ jsonrpc: "2.0", id: 1, method: "m" }),
    );
    assert.deepEqual(entry.params, {});
  });

  test("params kept as sent", () => {
    for (const params of [null, [], [1], "x", 0, { a: 1 }]) {
      const entry = expectRequest(
        readEntry({ jsonrpc: "2.0", id: 1, method: "m", params }),
      );
      assert.deepEqual(entry.params, params);
    }
  });

  test("invalid request has no data", () => {
    const invalid = expectInvalid(readEntry(42));
    assert.equal(invalid.error.data, undefined);
    assert.deepEqual(invalid.error.toJSON(), {
      code: ErrorCode.InvalidRequest,
      message: invalid.error.message,
    });
  });
});
