import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

// Compiled tests live in dist/test/client; the SDK in dist/src/client.
const distSrc = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "src",
);
const entry = resolve(distSrc, "client", "index.js");

const staticImport = /^\s*(?:import|export)\s[^;]*?\sfrom\s+"([^"]+)"/gm;
const sideEffectImport = /^\s*import\s+"([^"]+)"/gm;
const dynamicImport = /\bimport\(\s*"([^"]+)"\s*\)/g;

interface Graph {
  files: string[];
  bareStatic: string[];
  dynamic: string[];
}

/** Follows the static imports of the compiled SDK from its entry file. */
function walk(): Graph {
  const graph: Graph = { files: [], bareStatic: [], dynamic: [] };
  const pending = [entry];
  const seen = new Set<string>();
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    graph.files.push(relative(distSrc, file));
    const text = readFileSync(file, "utf8");
    const specifiers = [
      ...[...text.matchAll(staticImport)].map((match) => match[1]),
      ...[...text.matchAll(sideEffectImport)].map((match) => match[1]),
    ];
    for (const specifier of specifiers) {
      if (!specifier.startsWith(".")) {
        graph.bareStatic.push(`${relative(distSrc, file)}: ${specifier}`);
        continue;
      }
      pending.push(resolve(dirname(file), specifier));
    }
    for (const match of text.matchAll(dynamicImport)) {
      graph.dynamic.push(`${relative(distSrc, file)}: ${match[1]}`);
    }
  }
  return graph;
}

test("SDK imports only relative paths", () => {
  const graph = walk();

  assert.deepEqual(graph.bareStatic, []);
  assert.ok(graph.files.length > 5, `walked ${graph.files.join(", ")}`);
});

test("SDK stays inside dist/src", () => {
  const graph = walk();

  for (const file of graph.files) {
    assert.ok(!file.startsWith(".."), `${file} is outside dist/src`);
  }
  assert.ok(graph.files.includes("protocol/errors.js"));
  assert.ok(!graph.files.includes("protocol/schemas.js"));
});

test("ws is the only dynamic import", () => {
  const graph = walk();

  assert.deepEqual(graph.dynamic, ["client/socket.js: ws"]);
});
