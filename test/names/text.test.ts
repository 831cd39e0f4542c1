import assert from "node:assert/strict";
import { describe, test } from "node:test";

import fc from "fast-check";

import {
  findInvalidJsonText,
  hasControlCharacter,
  stringifyDeep,
  utf8Length,
} from "../../src/names/text.js";

/** Builds `levels` arrays nested inside each other around a number. */
function nestedArrays(levels: number): unknown {
  let value: unknown = 1;
  for (let level = 0; level < levels; level++) value = [value];
  return value;
}

describe("hasControlCharacter", () => {
  test("U+0000 to U+001F and U+007F", () => {
    for (let code = 0; code <= 0x1f; code++) {
      assert.equal(
        hasControlCharacter(String.fromCharCode(code)),
        true,
        `U+${code.toString(16)}`,
      );
    }
    assert.equal(hasControlCharacter("\u007f"), true);
  });

  test("other characters are not control", () => {
    for (const text of [
      " ",
      "~",
      "\u0080",
      "\u009f",
      "\u00a0",
      "\u2028",
      "\ufeff",
      "😀",
      "",
    ]) {
      assert.equal(hasControlCharacter(text), false, JSON.stringify(text));
    }
  });

  test("finds one anywhere in the text", () => {
    assert.equal(hasControlCharacter("abc\u0000"), true);
    assert.equal(hasControlCharacter("a\nb"), true);
  });
});

describe("utf8Length", () => {
  test("bytes per character width", () => {
    assert.equal(utf8Length(""), 0);
    assert.equal(utf8Length("a"), 1);
    assert.equal(utf8Length("é"), 2);
    assert.equal(utf8Length("€"), 3);
    assert.equal(utf8Length("😀"), 4);
    assert.equal(utf8Length("\u{10FFFF}"), 4);
  });
});

describe("findInvalidJsonText", () => {
  test("valid values have no problem", () => {
    for (const value of [
      null,
      true,
      0,
      -1.5,
      "",
      "😀",
      "\ud83d\ude00",
      "\u0000\u001f\u007f",
      [],
      {},
      { a: [1, "x", { b: null }] },
      JSON.parse('{"__proto__": {"constructor": 1}}'),
    ]) {
      assert.equal(
        findInvalidJsonText(value, "params"),
        undefined,
        JSON.stringify(value),
      );
    }
  });

  test("lone high surrogate in a string", () => {
    const problem = findInvalidJsonText("a\ud800b", "params.key");
    assert.ok(problem !== undefined);
    assert.ok(problem.includes("params.key"), problem);
  });

  test("lone low surrogate in a string", () => {
    assert.notEqual(findInvalidJsonText("\udc00", "params.key"), undefined);
  });

  test("reversed surrogate pair", () => {
    assert.notEqual(
      findInvalidJsonText("\udc00\ud800", "params.key"),
      undefined,
    );
  });

  test("high surrogate at the end", () => {
    assert.notEqual(findInvalidJsonText("😀\ud83d", "params.key"), undefined);
  });

  test("lone surrogate parsed from JSON", () => {
    const value = JSON.parse('{"value": {"list": [1, "\\ud800"]}}');
    const problem = findInvalidJsonText(value, "params");
    assert.ok(problem !== undefined);
    assert.ok(problem.includes("params.value.list[1]"), problem);
  });

  test("lone surrogate in a member name", () => {
    const value = JSON.parse('{"a": {"\\udfff": 1}}');
    const problem = findInvalidJsonText(value, "params");
    assert.ok(problem !== undefined);
    assert.ok(problem.includes("member name"), problem);
    assert.ok(problem.includes("params.a"), problem);
  });

  test("lone surrogate in a top-level member name", () => {
    const value = JSON.parse('{"\\ud800x": "ok"}');
    assert.notEqual(findInvalidJsonText(value, "params"), undefined);
  });

  test("lone surrogate under __proto__ member", () => {
    const value = JSON.parse('{"__proto__": ["\\ud800"]}');
    assert.notEqual(findInvalidJsonText(value, "params"), undefined);
  });

  test("deeply nested lone surrogate", () => {
    let value: unknown = "\ud800";
    for (let depth = 0; depth < 50; depth++)
      value = depth % 2 ? [value] : { x: value };
    assert.notEqual(findInvalidJsonText(value, "params"), undefined);
  });

  test("very deep valid value passes", () => {
    const params = { value: nestedArrays(100_000) };
    assert.equal(findInvalidJsonText(params, "params"), undefined);
  });

  test("very deep lone surrogate is found", () => {
    let value: unknown = "\ud800";
    for (let level = 0; level < 100_000; level++) value = [value];
    const problem = findInvalidJsonText({ value }, "params");
    assert.ok(problem !== undefined);
    assert.ok(problem.startsWith("params.value[0][0]"), problem.slice(0, 200));
    assert.ok(problem.length < 300, `${problem.length} characters`);
  });

  test("number overflow to Infinity", () => {
    const value = JSON.parse('{"value": [1e400]}');
    assert.equal(value.value[0], Infinity);
    const problem = findInvalidJsonText(value, "params");
    assert.ok(problem !== undefined);
    assert.ok(problem.includes("params.value[0]"), problem);
  });

  test("negative Infinity and NaN", () => {
    assert.notEqual(
      findInvalidJsonText(JSON.parse("-1e400"), "params"),
      undefined,
    );
    assert.notEqual(findInvalidJsonText(Number.NaN, "params"), undefined);
  });

  test("underflow to zero is valid", () => {
    const value = JSON.parse("[1e-400, -1e-400]");
    assert.equal(findInvalidJsonText(value, "params"), undefined);
  });

  test("reports the first problem", () => {
    const value = JSON.parse('["ok", 1e400, "\\ud800"]');
    const problem = findInvalidJsonText(value, "params");
    assert.ok(problem !== undefined);
    assert.ok(problem.includes("params[1]"), problem);
  });
});

describe("stringifyDeep", () => {
  test("matches JSON.stringify on JSON values", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        assert.equal(stringifyDeep(value), JSON.stringify(value));
      }),
      { numRuns: 300 },
    );
  });

  test("keeps __proto__ members", () => {
    const value = JSON.parse('{"__proto__":{"a":1},"b":[true,null]}');
    assert.equal(stringifyDeep(value), '{"__proto__":{"a":1},"b":[true,null]}');
  });

  test("serialises nesting JSON.stringify cannot", () => {
    const levels = 100_000;
    const text = "[".repeat(levels) + "1" + "]".repeat(levels);
    const value = JSON.parse(text);
    assert.throws(() => JSON.stringify(value), RangeError);
    assert.equal(stringifyDeep(value), text);
  });
});
