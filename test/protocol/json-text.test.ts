import assert from "node:assert/strict";
import { describe, test } from "node:test";

import fc from "fast-check";

import { RawJson, stringifyWithRaw } from "../../src/protocol/json-text.js";

/**
 * Replaces some subtrees of `value` with RawJson holding their
 * JSON.stringify text. `choices` decides, node by node in walk order,
 * whether to wrap, so the result must serialise to the same text.
 */
function wrapSubtrees(value: unknown, choices: boolean[]): unknown {
  let position = 0;
  const next = () => choices.length > 0 && choices[position++ % choices.length];

  const walk = (node: unknown): unknown => {
    if (next()) return new RawJson(JSON.stringify(node));
    if (Array.isArray(node)) return node.map(walk);
    if (node !== null && typeof node === "object") {
      const copy: Record<string, unknown> = {};
      for (const member of Object.keys(node)) {
        Object.defineProperty(copy, member, {
          value: walk((node as Record<string, unknown>)[member]),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return copy;
    }
    return node;
  };
  return walk(value);
}

describe("stringifyWithRaw", () => {
  test("property: equals JSON.stringify", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        assert.equal(stringifyWithRaw(value), JSON.stringify(value));
      }),
      { numRuns: 500 },
    );
  });

  test("property: equals JSON.stringify on unicode", () => {
    const unicodeJson = fc.jsonValue({
      stringUnit: "binary",
      maxDepth: 4,
    });
    fc.assert(
      fc.property(unicodeJson, (value) => {
        assert.equal(stringifyWithRaw(value), JSON.stringify(value));
      }),
      { numRuns: 300 },
    );
  });

  test("property: raw subtrees keep the text", () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.array(fc.boolean(), { maxLength: 7 }),
        (value, choices) => {
          const wrapped = wrapSubtrees(value, choices);
          assert.equal(stringifyWithRaw(wrapped), JSON.stringify(value));
        },
      ),
      { numRuns: 500 },
    );
  });

  test("property: raw text embedded verbatim", () => {
    // Any text, valid JSON or not, is copied unchanged.
    fc.assert(
      fc.property(fc.string(), fc.string(), (text, member) => {
        // A member named "after" would collide with the second member.
        fc.pre(member !== "after");
        const value = {
          [member]: new RawJson(text),
          after: [new RawJson(text)],
        };
        const expected = `{${JSON.stringify(member)}:${text},"after":[${text}]}`;
        assert.equal(stringifyWithRaw(value), expected);
      }),
      { numRuns: 300 },
    );
  });

  test("raw text with spacing kept", () => {
    const text = ' { "b" : [ 1 , 2 ] } ';
    assert.equal(stringifyWithRaw({ a: new RawJson(text) }), `{"a":${text}}`);
  });

  test("top-level raw value", () => {
    assert.equal(stringifyWithRaw(new RawJson("1.50")), "1.50");
  });

  test("raw value in an array", () => {
    assert.equal(
      stringifyWithRaw([1, new RawJson('{"x":1e2}'), "s"]),
      '[1,{"x":1e2},"s"]',
    );
  });

  test("undefined like JSON.stringify", () => {
    const value = { a: undefined, b: [undefined, 1], c: 2 };
    assert.equal(stringifyWithRaw(value), JSON.stringify(value));
    assert.equal(stringifyWithRaw(value), '{"b":[null,1],"c":2}');
  });

  test("control characters and lone surrogates", () => {
    const value = { "\u0000": "\u001f\u007f\ud800", "\udc00": ["\n"] };
    assert.equal(stringifyWithRaw(value), JSON.stringify(value));
  });

  test("__proto__ member serialised", () => {
    const value = JSON.parse('{"__proto__":{"x":1},"constructor":2}');
    assert.equal(
      stringifyWithRaw(value),
      '{"__proto__":{"x":1},"constructor":2}',
    );
  });

  test("integer-like member order", () => {
    const value = { b: 1, 2: 2, a: 3, 1: 4 };
    assert.equal(stringifyWithRaw(value), JSON.stringify(value));
  });
});
