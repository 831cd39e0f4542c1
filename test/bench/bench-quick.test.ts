import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import type { Report } from "../../bench/report.js";
import { quickSettings } from "../../bench/settings.js";

const distRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const benchPath = join(distRoot, "bench", "main.js");

/**
 * Runs the compiled benchmark to completion. spawnSync is fine here: the
 * test has nothing else to do while the benchmark runs.
 */
function runBench(args: string[]) {
  const result = spawnSync(process.execPath, [benchPath, ...args], {
    encoding: "utf8",
    timeout: 170_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

// Figures depend on the machine, so only the shape of the report is checked.
test(
  "bench --quick --json reports every scenario",
  { timeout: 180_000 },
  async () => {
    const result = runBench(["--quick", "--json"]);
    assert.equal(result.code, 0, result.stderr);

    const report = JSON.parse(result.stdout) as Report;
    const ids = report.rows.map((row) => row.id);
    const expected = [
      "get-p1",
      "get-p16",
      "set-p1",
      "set-p16",
      "mix-90-10",
      ...quickSettings.fanoutSubscribers.map((count) => `fanout-${count}`),
      `idle-${quickSettings.idleConnections}`,
      ...quickSettings.growthKeys.map((keys) => `growth-${keys}`),
      ...quickSettings.listSizes.map((keys) => `list-${keys}`),
      ...quickSettings.otherSubscriptions.map((count) => `other-subs-${count}`),
    ];
    assert.deepEqual(ids, expected);

    for (const row of report.rows) {
      assert.equal(
        typeof row.kvstream?.median,
        "number",
        `${row.id} has no kvstream figure`,
      );
      if (row.kind !== "list") {
        assert.equal(
          typeof row.reference?.median,
          "number",
          `${row.id} has no reference figure`,
        );
        // CPU time below the 10 ms tick reads as 0, which gives no ratio.
        if (row.reference!.median > 0) {
          assert.equal(
            typeof row.ratioToReference,
            "number",
            `${row.id} has no ratio`,
          );
        }
      }
    }
    assert.equal(report.settings.quick, true);
    assert.ok(report.targets.length > 0, "the report checks no targets");
  },
);

test("bench rejects an unknown scenario id", { timeout: 60_000 }, async () => {
  const result = runBench([
    "--quick",
    "--only",
    "no-such-scenario",
    "--no-redis",
  ]);
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /--only 'no-such-scenario' matches no scenario id/,
  );
});
