import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { errorCatalog } from "../../src/protocol/errors.js";

// Compiled tests run from dist/test/protocol; the README is at the root.
const readme = readFileSync(
  new URL("../../../README.md", import.meta.url),
  "utf8",
);

/** Rows of the README's error table: `| -32700 | Parse Error | ... |`. */
function readmeErrorRows(): Array<{ code: number; name: string }> {
  return [...readme.matchAll(/^\| (-32\d{3}) \| ([^|]+) \|/gm)].map(
    (match) => ({ code: Number(match[1]), name: match[2].trim() }),
  );
}

test("README error table matches catalog", () => {
  const documented = readmeErrorRows();
  const catalog = errorCatalog.map(({ code, name }) => ({ code, name }));
  assert.deepEqual(documented, catalog);
});

test("error codes are unique", () => {
  const codes = errorCatalog.map((entry) => entry.code);
  assert.equal(new Set(codes).size, codes.length);
});
