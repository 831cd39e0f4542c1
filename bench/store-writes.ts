/**
 * Measures the SQLite store's write path without a network or a server:
 * groups of kv/set writes queued in one event loop turn, so that each
 * group is one commit, as under a pipelined load. It prints the wall
 * time and the process CPU time per write. With ":memory:" the CPU time
 * is the SQL and JavaScript work alone. With a file it also covers the
 * WAL writes, and the wall time adds the fsync of each commit.
 *
 * Run: node dist/bench/store-writes.js [file|memory] [writes per commit] [commits]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { SqliteStore } from "../src/store/sqlite.js";

/** Distinct keys written, as in the kv/set scenarios of `npm run bench`. */
const keyCount = 10_000;
/** Commits run before the measured ones, to fill the table and the WAL. */
const warmUpCommits = 20;
const valueJson = JSON.stringify("x".repeat(100));

function parsePositive(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(
      `Invalid count '${text}': expected a whole number of at least 1.`,
    );
  }
  return value;
}

async function main(): Promise<void> {
  const [kind = "file", writesArg, commitsArg] = process.argv.slice(2);
  if (kind !== "file" && kind !== "memory") {
    throw new Error(`Invalid store kind '${kind}': expected file or memory.`);
  }
  const writesPerCommit = parsePositive(writesArg, 800);
  const commits = parsePositive(commitsArg, 50);

  const directory = mkdtempSync(join(tmpdir(), "kvstream-store-writes-"));
  const store = new SqliteStore({
    path: kind === "memory" ? ":memory:" : join(directory, "store.db"),
    historyChanges: Number.MAX_SAFE_INTEGER,
    historySeconds: Number.MAX_SAFE_INTEGER,
    pruneIntervalMs: 0,
  });

  let written = 0;
  const commitOnce = async () => {
    const writes: Array<Promise<unknown>> = [];
    for (let index = 0; index < writesPerCommit; index++) {
      // A stride coprime to the key count spreads the keys over the table.
      const key = `key-${(written++ * 7919) % keyCount}`;
      writes.push(
        store.write({
          tenantId: "bench",
          actor: "bench",
          reportIndex: false,
          operations: [{ op: "set", namespace: "bench/a", key, valueJson }],
        }),
      );
    }
    await Promise.all(writes);
  };

  try {
    for (let index = 0; index < warmUpCommits; index++) await commitOnce();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    for (let index = 0; index < commits; index++) await commitOnce();
    const wallMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);

    const writes = writesPerCommit * commits;
    const wallMicros = (wallMs * 1000) / writes;
    const cpuMicros = (cpu.user + cpu.system) / writes;
    console.log(
      `${kind}, ${writesPerCommit} writes per commit, ${commits} commits: ` +
        `wall ${wallMicros.toFixed(1)} us/write, CPU ${cpuMicros.toFixed(1)} us/write, ` +
        `${Math.round(writes / (wallMs / 1000))} writes/s`,
    );
  } finally {
    await store.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

await main();
