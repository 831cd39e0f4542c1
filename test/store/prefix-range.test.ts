import assert from "node:assert/strict";
import { test } from "node:test";

import fc from "fast-check";

import { prefixRange } from "../../src/store/prefix-range.js";

function bytes(text: string): Buffer {
  return Buffer.from(text, "utf8");
}

test("prefix range bounds", () => {
  assert.deepEqual(prefixRange("ab"), { from: "ab", below: "ac" });
  assert.deepEqual(prefixRange("a\u{d7ff}"), {
    from: "a\u{d7ff}",
    below: "a\u{e000}",
  });
  assert.deepEqual(prefixRange("a\u{10ffff}"), {
    from: "a\u{10ffff}",
    below: "b",
  });
  assert.deepEqual(prefixRange("\u{10ffff}"), {
    from: "\u{10ffff}",
    below: null,
  });
});

test("prefix range matches startsWith", () => {
  fc.assert(
    fc.property(
      fc.string({ unit: "grapheme", minLength: 1, maxLength: 3 }),
      fc.string({ unit: "grapheme", maxLength: 4 }),
      fc.boolean(),
      (prefix, text, extend) => {
        // Half the keys extend the prefix, since random keys rarely do.
        const key = extend ? prefix + text : text;
        const { from, below } = prefixRange(prefix);
        const inRange =
          Buffer.compare(bytes(key), bytes(from)) >= 0 &&
          (below === null || Buffer.compare(bytes(key), bytes(below)) < 0);
        assert.equal(inRange, key.startsWith(prefix), `${prefix} / ${key}`);
      },
    ),
  );
});
