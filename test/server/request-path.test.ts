import assert from "node:assert/strict";
import { test } from "node:test";

import { requestPath } from "../../src/server/request-path.js";

test("query string is dropped", () => {
  assert.equal(requestPath("/stream?x=1"), "/stream");
});

test("trailing slash is kept", () => {
  assert.equal(requestPath("/stream/"), "/stream/");
});

test("absolute form yields its path", () => {
  assert.equal(requestPath("http://example.test:7070/stream?a"), "/stream");
  assert.equal(requestPath("http://example.test"), "/");
});

test("target the URL parser rejects", () => {
  assert.throws(() => new URL("//[", "http://localhost"));
  assert.equal(requestPath("//["), "//[");
});

test("missing target is the root", () => {
  assert.equal(requestPath(undefined), "/");
});
