import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  actorProblem,
  keyProblem,
  maxActorBytes,
  maxKeyBytes,
  prefixProblem,
} from "../../src/names/key.js";

const controlCharacters = [
  "\u0000",
  "\u0001",
  "\t",
  "\n",
  "\r",
  "\u001f",
  "\u007f",
];

/** ASCII filler followed by `tail`, `bytes` long in UTF-8. */
function textOfBytes(bytes: number, tail = ""): string {
  return "k".repeat(bytes - Buffer.byteLength(tail, "utf8")) + tail;
}

describe("keyProblem", () => {
  test("accepts ordinary keys", () => {
    for (const key of [
      "a",
      "/",
      "a/b/",
      "user:u1",
      "%_*",
      " ",
      "日本",
      "😀",
      "\u0080",
      "\u{10FFFF}",
    ]) {
      assert.equal(keyProblem(key), undefined, key);
    }
  });

  test("rejects the empty key", () => {
    assert.notEqual(keyProblem(""), undefined);
  });

  test("1,024 bytes exactly is valid", () => {
    const key = textOfBytes(maxKeyBytes);
    assert.equal(Buffer.byteLength(key), 1024);
    assert.equal(keyProblem(key), undefined);
  });

  test("1,025 bytes is invalid", () => {
    const key = textOfBytes(maxKeyBytes + 1);
    assert.equal(Buffer.byteLength(key), 1025);
    assert.notEqual(keyProblem(key), undefined);
  });

  test("multi-byte characters at the limit", () => {
    for (const character of ["é", "€", "😀"]) {
      assert.equal(
        keyProblem(textOfBytes(1024, character)),
        undefined,
        `${character} ending at 1024`,
      );
      assert.notEqual(
        keyProblem(textOfBytes(1025, character)),
        undefined,
        `${character} ending at 1025`,
      );
    }
  });

  test("counts UTF-8 bytes, not UTF-16 units", () => {
    // 342 * 3 = 1,026 bytes in 342 UTF-16 code units.
    assert.notEqual(keyProblem("€".repeat(342)), undefined);
    // 512 * 2 = 1,024 bytes.
    assert.equal(keyProblem("é".repeat(512)), undefined);
    // 257 * 4 = 1,028 bytes in 514 UTF-16 code units.
    assert.notEqual(keyProblem("😀".repeat(257)), undefined);
  });

  test("rejects control characters", () => {
    for (const character of controlCharacters) {
      for (const key of [character, `a${character}`, `${character}a`]) {
        assert.notEqual(keyProblem(key), undefined, JSON.stringify(key));
      }
    }
  });
});

describe("prefixProblem", () => {
  test("accepts the empty prefix", () => {
    assert.equal(prefixProblem(""), undefined);
  });

  test("accepts wildcard-like characters", () => {
    assert.equal(prefixProblem("%"), undefined);
    assert.equal(prefixProblem("_"), undefined);
    assert.equal(prefixProblem("a*"), undefined);
  });

  test("1,024 bytes valid, 1,025 invalid", () => {
    assert.equal(prefixProblem(textOfBytes(1024)), undefined);
    assert.notEqual(prefixProblem(textOfBytes(1025)), undefined);
    assert.equal(prefixProblem(textOfBytes(1024, "😀")), undefined);
    assert.notEqual(prefixProblem(textOfBytes(1025, "😀")), undefined);
  });

  test("rejects control characters", () => {
    for (const character of controlCharacters) {
      assert.notEqual(
        prefixProblem(`p${character}`),
        undefined,
        JSON.stringify(character),
      );
    }
  });
});

describe("actorProblem", () => {
  test("accepts an ordinary actor", () => {
    assert.equal(actorProblem("auth0|u1"), undefined);
    assert.equal(actorProblem("a"), undefined);
  });

  test("rejects the empty actor", () => {
    assert.notEqual(actorProblem(""), undefined);
  });

  test("256 bytes valid, 257 invalid", () => {
    assert.equal(actorProblem(textOfBytes(maxActorBytes)), undefined);
    assert.notEqual(actorProblem(textOfBytes(maxActorBytes + 1)), undefined);
    assert.equal(actorProblem(textOfBytes(256, "€")), undefined);
    assert.notEqual(actorProblem(textOfBytes(257, "€")), undefined);
  });

  test("rejects control characters", () => {
    for (const character of controlCharacters) {
      assert.notEqual(
        actorProblem(`u${character}`),
        undefined,
        JSON.stringify(character),
      );
    }
  });
});
