import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { sleep } from "./rpc-load.js";

const startTimeoutMs = 10_000;

/** True when both redis-server and redis-benchmark are on the PATH. */
export function isRedisInstalled(): boolean {
  return ["redis-server", "redis-benchmark"].every(
    (command) =>
      spawnSync(command, ["--version"], { stdio: "ignore" }).status === 0,
  );
}

/**
 * Returns a TCP port that was free a moment ago. redis-server cannot pick
 * its own port and report it, so the port is found by binding port 0 and
 * closing again.
 */
// NOTE: another process could take the port between the close and
// redis-server's bind; the start then fails with a clear error.
function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export interface RedisResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export interface RedisRun {
  /** `redis-benchmark -t` test name: get or set. */
  test: "get" | "set";
  durable: boolean;
  connections: number;
  pipeline: number;
  requests: number;
  keys: number;
  valueBytes: number;
  timeoutMs: number;
}

/**
 * Starts a private redis-server on 127.0.0.1 and a free port, with its
 * own temporary directory, runs redis-benchmark against it, and stops it.
 * Reads run without persistence; durable runs use `appendonly yes` with
 * `appendfsync always`, so every write was fsynced before its response.
 */
export async function runRedisBenchmark(run: RedisRun): Promise<RedisResult> {
  const dir = await mkdtemp(join(tmpdir(), "kvstream-bench-redis-"));
  const port = await findFreePort();
  const persistence = run.durable
    ? ["--appendonly", "yes", "--appendfsync", "always"]
    : ["--appendonly", "no"];
  const server = spawn(
    "redis-server",
    [
      "--bind",
      "127.0.0.1",
      "--port",
      String(port),
      "--dir",
      dir,
      "--save",
      "",
      "--protected-mode",
      "yes",
      ...persistence,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<void>((resolve) =>
    server.once("exit", () => resolve()),
  );
  try {
    await waitForRedis(server, port);
    // Fill the key space first so that gets find their keys.
    if (run.test === "get") {
      await benchmark(port, {
        ...run,
        test: "set",
        requests: Math.max(run.keys * 2, 1000),
      });
    }
    return await benchmark(port, run);
  } finally {
    if (server.exitCode === null) server.kill("SIGTERM");
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
}

function waitForRedis(
  server: ReturnType<typeof spawn>,
  port: number,
): Promise<void> {
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `redis-server on port ${port} did not start within ${startTimeoutMs} ms:\n${output}`,
          ),
        ),
      startTimeoutMs,
    );
    server.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
    server.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      output = (output + chunk).slice(-4096);
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

async function benchmark(port: number, run: RedisRun): Promise<RedisResult> {
  const args = [
    "-h",
    "127.0.0.1",
    "-p",
    String(port),
    "-c",
    String(run.connections),
    "-P",
    String(run.pipeline),
    "-n",
    String(run.requests),
    "-r",
    String(run.keys),
    "-d",
    String(run.valueBytes),
    "-t",
    run.test,
    "--csv",
  ];
  const child = spawn("redis-benchmark", args, {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout
    .setEncoding("utf8")
    .on("data", (chunk: string) => (stdout += chunk));
  child.stderr
    .setEncoding("utf8")
    .on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-4096)));
  const timer = setTimeout(() => child.kill("SIGKILL"), run.timeoutMs);
  const code = await new Promise<number | null>((resolve) =>
    child.once("exit", resolve),
  );
  clearTimeout(timer);
  await sleep(0);
  const row = stdout
    .split("\n")
    .map((line) => line.split(",").map((cell) => cell.replace(/^"|"$/g, "")))
    .find((cells) => cells[0] === run.test.toUpperCase());
  if (code !== 0 || !row) {
    throw new Error(
      `redis-benchmark ${args.join(" ")} failed (exit ${code}):\n${stderr}${stdout}`,
    );
  }
  // Columns: test, rps, avg, min, p50, p95, p99, max (latencies in ms).
  return {
    requestsPerSecond: Number(row[1]),
    p50Ms: Number(row[4]),
    p99Ms: Number(row[6]),
  };
}
