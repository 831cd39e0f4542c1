import assert from "node:assert/strict";
import { describe, test } from "node:test";

import fc from "fast-check";

import {
  isValidTenantId,
  isWithin,
  maxNamespaceBytes,
  namespaceAndAncestors,
  namespaceProblem,
  tenantOf,
} from "../../src/names/namespace.js";

/** Builds `tenant:a/` followed by ASCII filler and `tail`, `bytes` long. */
function namespaceOfBytes(bytes: number, tail = ""): string {
  const head = "tenant:a/";
  const filler = bytes - head.length - Buffer.byteLength(tail, "utf8");
  return head + "x".repeat(filler) + tail;
}

describe("namespaceProblem", () => {
  test("accepts valid namespaces", () => {
    for (const namespace of [
      "tenant:acme",
      "tenant:a",
      "tenant:A0._-",
      "tenant:acme/user:u1/preferences",
      "tenant:acme/日本/😀",
      "tenant:acme/ spaced segment ",
      "tenant:acme/.../.x/x./..x",
      "tenant:acme/%_*",
      "tenant:acme/\u0080\u009f",
    ]) {
      assert.equal(namespaceProblem(namespace), undefined, namespace);
    }
  });

  test("requires the tenant: prefix", () => {
    for (const namespace of [
      "",
      "acme",
      "Tenant:acme",
      "TENANT:acme",
      "tenant",
      " tenant:acme",
      "tenants:acme",
    ]) {
      assert.notEqual(namespaceProblem(namespace), undefined, namespace);
    }
  });

  test("rejects invalid tenant ids", () => {
    for (const namespace of [
      "tenant:",
      "tenant:/x",
      "tenant:.acme",
      "tenant:_acme",
      "tenant:-acme",
      "tenant:ac me",
      "tenant:ac:me",
      "tenant:acmé",
      "tenant:ac\u0000me",
      "tenant:acme\n",
      `tenant:${"a".repeat(65)}`,
    ]) {
      assert.notEqual(namespaceProblem(namespace), undefined, namespace);
    }
  });

  test("tenant id of 64 characters", () => {
    assert.equal(namespaceProblem(`tenant:${"a".repeat(64)}`), undefined);
    assert.equal(namespaceProblem(`tenant:${"a".repeat(64)}/x`), undefined);
    assert.notEqual(namespaceProblem(`tenant:${"a".repeat(65)}/x`), undefined);
  });

  test("rejects empty segments", () => {
    for (const namespace of [
      "tenant:acme/",
      "tenant:acme//x",
      "tenant:acme/x/",
      "tenant:acme/x//y",
    ]) {
      assert.notEqual(namespaceProblem(namespace), undefined, namespace);
    }
  });

  test("rejects dot and dot-dot segments", () => {
    for (const namespace of [
      "tenant:acme/.",
      "tenant:acme/..",
      "tenant:acme/./x",
      "tenant:acme/x/../y",
      "tenant:acme/x/..",
    ]) {
      assert.notEqual(namespaceProblem(namespace), undefined, namespace);
    }
  });

  test("rejects control characters in segments", () => {
    for (const character of [
      "\u0000",
      "\t",
      "\n",
      "\r",
      "\u001b",
      "\u001f",
      "\u007f",
    ]) {
      const namespace = `tenant:acme/a${character}b`;
      assert.notEqual(
        namespaceProblem(namespace),
        undefined,
        JSON.stringify(namespace),
      );
    }
  });

  test("512 bytes exactly is valid", () => {
    const namespace = namespaceOfBytes(maxNamespaceBytes);
    assert.equal(Buffer.byteLength(namespace), 512);
    assert.equal(namespaceProblem(namespace), undefined);
  });

  test("513 bytes is invalid", () => {
    const namespace = namespaceOfBytes(maxNamespaceBytes + 1);
    assert.equal(Buffer.byteLength(namespace), 513);
    assert.notEqual(namespaceProblem(namespace), undefined);
  });

  test("multi-byte characters at the limit", () => {
    for (const character of ["é", "€", "😀"]) {
      const fits = namespaceOfBytes(maxNamespaceBytes, character);
      assert.equal(Buffer.byteLength(fits), 512);
      assert.equal(
        namespaceProblem(fits),
        undefined,
        `${character} ending at 512`,
      );

      const over = namespaceOfBytes(maxNamespaceBytes + 1, character);
      assert.equal(Buffer.byteLength(over), 513);
      assert.notEqual(
        namespaceProblem(over),
        undefined,
        `${character} ending at 513`,
      );
    }
  });

  test("counts UTF-8 bytes, not UTF-16 units", () => {
    // 9 + 252 * 2 = 513 bytes in 261 UTF-16 code units.
    const twoByte = `tenant:a/${"é".repeat(252)}`;
    assert.ok(twoByte.length < maxNamespaceBytes);
    assert.notEqual(namespaceProblem(twoByte), undefined);

    // 9 + 126 * 4 = 513 bytes in 261 UTF-16 code units.
    const astral = `tenant:a/${"😀".repeat(126)}`;
    assert.ok(astral.length < maxNamespaceBytes);
    assert.notEqual(namespaceProblem(astral), undefined);

    // 9 + 125 * 4 = 509 bytes.
    assert.equal(namespaceProblem(`tenant:a/${"😀".repeat(125)}`), undefined);
  });

  test("problem is a readable phrase", () => {
    const problem = namespaceProblem("tenant:acme/..");
    assert.equal(typeof problem, "string");
    assert.ok(problem!.length > 0);
  });
});

describe("isValidTenantId", () => {
  test("pattern boundaries", () => {
    assert.equal(isValidTenantId("a"), true);
    assert.equal(isValidTenantId("0"), true);
    assert.equal(isValidTenantId("Z.9_-"), true);
    assert.equal(isValidTenantId("a".repeat(64)), true);
    assert.equal(isValidTenantId("a".repeat(65)), false);
    assert.equal(isValidTenantId(""), false);
    assert.equal(isValidTenantId(".a"), false);
    assert.equal(isValidTenantId("a/b"), false);
    assert.equal(isValidTenantId("a\n"), false);
  });
});

describe("tenantOf", () => {
  test("returns the tenant id", () => {
    assert.equal(tenantOf("tenant:acme"), "acme");
    assert.equal(tenantOf("tenant:acme/x"), "acme");
    assert.equal(tenantOf("tenant:acme/x/y:z"), "acme");
    assert.equal(tenantOf("tenant:a.b-c_d/x"), "a.b-c_d");
    assert.equal(tenantOf("tenant:acme2"), "acme2");
  });
});

describe("isWithin", () => {
  test("equal namespace is within", () => {
    assert.equal(isWithin("tenant:acme", "tenant:acme"), true);
    assert.equal(isWithin("tenant:acme/x", "tenant:acme/x"), true);
  });

  test("child namespace is within", () => {
    assert.equal(isWithin("tenant:acme/x", "tenant:acme"), true);
    assert.equal(isWithin("tenant:acme/x/y", "tenant:acme"), true);
    assert.equal(isWithin("tenant:acme/x/y", "tenant:acme/x"), true);
  });

  test("sibling with longer name is not", () => {
    assert.equal(isWithin("tenant:acme2", "tenant:acme"), false);
    assert.equal(isWithin("tenant:acme-x", "tenant:acme"), false);
    assert.equal(isWithin("tenant:acme2/x", "tenant:acme"), false);
    assert.equal(isWithin("tenant:acme/xy", "tenant:acme/x"), false);
    assert.equal(isWithin("tenant:acme/x0", "tenant:acme/x"), false);
  });

  test("ancestor is not within child", () => {
    assert.equal(isWithin("tenant:acme", "tenant:acme/x"), false);
    assert.equal(isWithin("tenant:acme/x", "tenant:acme/x/y"), false);
  });

  test("compares bytes without normalisation", () => {
    const composed = "tenant:acme/\u00e9";
    const decomposed = "tenant:acme/e\u0301";
    assert.equal(isWithin(composed, decomposed), false);
    assert.equal(isWithin(decomposed, composed), false);
    assert.equal(isWithin("tenant:Acme", "tenant:acme"), false);
  });
});

describe("namespaceAndAncestors", () => {
  test("lists deepest first", () => {
    assert.deepEqual(namespaceAndAncestors("tenant:a/b/c"), [
      "tenant:a/b/c",
      "tenant:a/b",
      "tenant:a",
    ]);
  });

  test("tenant namespace alone", () => {
    assert.deepEqual(namespaceAndAncestors("tenant:acme"), ["tenant:acme"]);
  });

  test("segments with colons and dots", () => {
    assert.deepEqual(namespaceAndAncestors("tenant:a.b/user:u1/x.y"), [
      "tenant:a.b/user:u1/x.y",
      "tenant:a.b/user:u1",
      "tenant:a.b",
    ]);
  });

  test("property: valid ancestors containing the namespace", () => {
    const segment = fc.constantFrom("x", "xy", "é", "😀", "user:u1", "...");
    const namespace = fc
      .tuple(
        fc.constantFrom("acme", "acme2", "a.b"),
        fc.array(segment, { maxLength: 5 }),
      )
      .map(([tenant, segments]) => [`tenant:${tenant}`, ...segments].join("/"));

    fc.assert(
      fc.property(namespace, (value) => {
        const ancestors = namespaceAndAncestors(value);
        assert.equal(ancestors.length, value.split("/").length);
        assert.equal(ancestors[0], value);
        assert.equal(
          ancestors[ancestors.length - 1],
          `tenant:${tenantOf(value)}`,
        );
        for (const ancestor of ancestors) {
          assert.equal(namespaceProblem(ancestor), undefined);
          assert.equal(isWithin(value, ancestor), true);
          assert.equal(tenantOf(ancestor), tenantOf(value));
        }
      }),
      { numRuns: 200 },
    );
  });
});
