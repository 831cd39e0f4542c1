import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { before, describe, it } from "node:test";

import { type KvClient } from "../../src/client/index.js";
import { useClientServer } from "../support/client-server.js";
import { cliPath, runCli, type CliResult } from "../support/server-process.js";
import { delay, range, withTimeout } from "../support/watch-helpers.js";

const fixture = useClientServer({ key: { tenant: "cli" } });
let client: KvClient;

function env(): Record<string, string> {
  return {
    KVSTREAM_URL: fixture.server.url,
    KVSTREAM_API_KEY: fixture.key.key,
  };
}

function kvstream(args: string[], input?: string): Promise<CliResult> {
  return runCli(args, { env: env(), input });
}

/** Parses stdout as one JSON document per line. */
function lines(result: CliResult): unknown[] {
  return result.stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line));
}

/**
 * Runs a bash pipeline with pipefail, so that the exit status is the
 * first failing command's, and returns it with stdout.
 */
function runPipeline(
  pipeline: string,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", `set -o pipefail; ${pipeline}`], {
      env: { ...process.env, ...env() },
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => (out += chunk));
    child.on("close", (code) => resolve({ code, out }));
  });
}

before(async () => {
  client = await fixture.openShared();
});

describe("set and get", () => {
  it("set prints the result as JSON", async () => {
    const result = await kvstream(["set", "tenant:cli/a", "theme", '"dark"']);

    assert.equal(result.code, 0, result.stderr);
    const [written] = lines(result) as Array<Record<string, unknown>>;
    assert.equal(written.key, "theme");
    assert.equal(written.version, 1);
    assert.equal(result.stderr, "");
  });

  it("get prints the entry", async () => {
    await kvstream(["set", "tenant:cli/a", "obj", '{"n":[1,2]}']);

    const result = await kvstream(["get", "tenant:cli/a", "obj"]);

    assert.equal(result.code, 0, result.stderr);
    const [entry] = lines(result) as Array<Record<string, unknown>>;
    assert.deepEqual(entry.value, { n: [1, 2] });
  });

  it("set - reads the value from stdin", async () => {
    const result = await kvstream(
      ["set", "tenant:cli/a", "piped", "-"],
      '{"from":"stdin"}\n',
    );
    const stored = await client.get({
      namespace: "tenant:cli/a",
      key: "piped",
    });

    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(stored.value, { from: "stdin" });
  });

  it("set --string stores text", async () => {
    const result = await kvstream([
      "set",
      "tenant:cli/a",
      "text",
      "not json",
      "--string",
    ]);
    const stored = await client.get({ namespace: "tenant:cli/a", key: "text" });

    assert.equal(result.code, 0, result.stderr);
    assert.equal(stored.value, "not json");
  });

  it("set --cas conflict exits 1 with the code", async () => {
    await kvstream(["set", "tenant:cli/a", "cas", "1"]);

    const result = await kvstream([
      "set",
      "tenant:cli/a",
      "cas",
      "2",
      "--cas",
      "5",
    ]);

    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^kvstream set: error -32002 \(CAS Conflict\)/);
    assert.match(result.stderr, /"expected":5,"actual":1/);
  });

  it("get of a missing key exits 1", async () => {
    const result = await kvstream(["get", "tenant:cli/a", "missing"]);

    assert.equal(result.code, 1);
    assert.match(result.stderr, /error -32004 \(Not Found\)/);
  });

  it("delete prints the deleted version", async () => {
    await kvstream(["set", "tenant:cli/a", "gone", "1"]);

    const result = await kvstream(["delete", "tenant:cli/a", "gone"]);

    assert.equal(result.code, 0, result.stderr);
    const [deleted] = lines(result) as Array<Record<string, unknown>>;
    assert.equal(deleted.version, 2);
  });
});

describe("usage and connection errors", () => {
  it("invalid JSON value exits 2", async () => {
    const result = await kvstream(["set", "tenant:cli/a", "k", "dark"]);

    assert.equal(result.code, 2);
    assert.match(result.stderr, /<value> is not valid JSON/);
    assert.match(result.stderr, /--string/);
  });

  it("number beyond a double exits 2", async () => {
    const result = await kvstream(["set", "tenant:cli/a", "huge", "1e400"]);
    const read = await kvstream(["get", "tenant:cli/a", "huge"]);

    assert.equal(result.code, 2);
    assert.match(result.stderr, /error -31009 \(Not Serializable\)/);
    assert.match(result.stderr, /Nothing was sent/);
    assert.equal(read.code, 1);
    assert.match(read.stderr, /error -32004 \(Not Found\)/);
  });

  it("invalid batch JSON names no --string", async () => {
    const result = await kvstream(["batch"], "[1,");

    assert.equal(result.code, 2);
    assert.match(result.stderr, /\[operations\] is not valid JSON/);
    assert.doesNotMatch(result.stderr, /--string/);
  });

  it("non-numeric --cas exits 2", async () => {
    const result = await kvstream([
      "set",
      "tenant:cli/a",
      "k",
      "1",
      "--cas",
      "x",
    ]);

    assert.equal(result.code, 2);
    assert.match(result.stderr, /--cas <version>' argument 'x' is invalid/);
  });

  it("missing argument exits 2", async () => {
    const result = await kvstream(["get", "tenant:cli/a"]);

    assert.equal(result.code, 2);
    assert.match(result.stderr, /missing required argument 'key'/);
  });

  it("missing API key exits 2", async () => {
    const result = await runCli(["get", "tenant:cli/a", "k"], {
      env: { KVSTREAM_URL: fixture.server.url, KVSTREAM_API_KEY: "" },
    });

    assert.equal(result.code, 2);
    assert.match(result.stderr, /no API key: set KVSTREAM_API_KEY/);
  });

  it("unreachable server exits 3", async () => {
    const result = await runCli(["get", "tenant:cli/a", "k"], {
      env: {
        KVSTREAM_URL: "ws://127.0.0.1:1/stream",
        KVSTREAM_API_KEY: fixture.key.key,
      },
    });

    assert.equal(result.code, 3);
    assert.match(result.stderr, /error -31005 \(Connect Failed\)/);
  });

  it("invalid --url exits 2", async () => {
    const result = await kvstream(["get", "tenant:cli/a", "k", "--url", "x"]);

    assert.equal(result.code, 2);
    assert.match(result.stderr, /url 'x' is invalid/);
  });

  it("invalid key exits 1 with Unauthorized", async () => {
    const result = await runCli(["get", "tenant:cli/a", "k"], {
      env: {
        KVSTREAM_URL: fixture.server.url,
        KVSTREAM_API_KEY: "kvs_nokey_secret",
      },
    });

    assert.equal(result.code, 1);
    assert.match(result.stderr, /error -32003 \(Unauthorized\)/);
  });
});

describe("lists in a pipe", () => {
  const namespace = "tenant:cli/many";
  const count = 1_005;

  before(async () => {
    const keys = range(1, count).map((n) => `k${String(n).padStart(4, "0")}`);
    for (let start = 0; start < count; start += 500) {
      await client.batch({
        operations: keys.slice(start, start + 500).map((key) => ({
          op: "set" as const,
          namespace,
          key,
          value: key,
        })),
      });
    }
    await client.set({ namespace: `${namespace}/sub`, key: "x", value: 1 });
  });

  it("list walks every page", async () => {
    const result = await kvstream(["list", namespace]);

    assert.equal(result.code, 0, result.stderr);
    const items = lines(result) as Array<{ key: string }>;
    assert.equal(items.length, count);
    assert.equal(items[0].key, "k0001");
    assert.equal(items.at(-1)!.key, "k1005");
  });

  it("list --limit stops early", async () => {
    const result = await kvstream(["list", namespace, "--limit", "3"]);

    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      (lines(result) as Array<{ key: string }>).map((item) => item.key),
      ["k0001", "k0002", "k0003"],
    );
  });

  it("list --prefix filters keys", async () => {
    const result = await kvstream(["list", namespace, "--prefix", "k100"]);

    assert.equal(result.code, 0, result.stderr);
    assert.equal(lines(result).length, 6);
  });

  it("list piped into a shell filter", async () => {
    const result = await runPipeline(
      `node "${cliPath}" list ${namespace} | grep -c '"value":"k0'`,
    );

    assert.equal(result.code, 0);
    assert.equal(result.out.trim(), String(999));
  });

  it("list into head exits 0", async () => {
    const result = await runPipeline(
      `node "${cliPath}" list ${namespace} | head -n 1`,
    );

    assert.equal(result.code, 0);
    assert.equal(JSON.parse(result.out).key, "k0001");
  });

  it("namespaces prints one line per namespace", async () => {
    const result = await kvstream(["namespaces", namespace]);

    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(lines(result), [
      { namespace, keys: count },
      { namespace: `${namespace}/sub`, keys: 1 },
    ]);
  });

  it("mget prints entries and null", async () => {
    const result = await kvstream([
      "mget",
      namespace,
      "k0001",
      "nope",
      "k0002",
    ]);

    assert.equal(result.code, 0, result.stderr);
    const items = lines(result) as Array<{ value: string } | null>;
    assert.equal(items.length, 3);
    assert.equal(items[0]?.value, "k0001");
    assert.equal(items[1], null);
    assert.equal(items[2]?.value, "k0002");
  });
});

describe("batch", () => {
  const namespace = "tenant:cli/batch";

  it("batch reads operations from stdin", async () => {
    const operations = [
      { op: "set", namespace, key: "a", value: 1 },
      { op: "set", namespace, key: "b", value: 2 },
    ];

    const result = await kvstream(["batch"], JSON.stringify(operations));

    assert.equal(result.code, 0, result.stderr);
    const results = lines(result) as Array<{ key: string; version: number }>;
    assert.deepEqual(
      results.map((item) => item.key),
      ["a", "b"],
    );
  });

  it("batch takes operations as an argument", async () => {
    const result = await kvstream([
      "batch",
      JSON.stringify([{ op: "delete", namespace, key: "a" }]),
    ]);

    assert.equal(result.code, 0, result.stderr);
    assert.equal(lines(result).length, 1);
  });

  it("failing batch exits 1 with the index", async () => {
    const result = await kvstream([
      "batch",
      JSON.stringify([
        { op: "set", namespace, key: "c", value: 1 },
        { op: "delete", namespace, key: "never" },
      ]),
    ]);

    assert.equal(result.code, 1);
    assert.match(result.stderr, /error -32004 \(Not Found\)/);
    assert.match(result.stderr, /"index":1/);
  });

  it("batch of a non-array exits 2", async () => {
    const result = await kvstream(["batch", '{"op":"set"}']);

    assert.equal(result.code, 2);
    assert.match(result.stderr, /must be a JSON array/);
  });
});

describe("watch", { timeout: 60_000 }, () => {
  it("watch survives a server restart", async () => {
    const namespace = "tenant:cli/watched";
    const watcher = spawn(process.execPath, [cliPath, "watch", namespace], {
      env: { ...process.env, ...env() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    watcher.stdout.setEncoding("utf8").on("data", (chunk) => (stdout += chunk));
    watcher.stderr.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) =>
      watcher.on("close", (code) => resolve(code)),
    );
    const changeCount = () => stdout.split("\n").filter(Boolean).length;
    const waitForLines = (count: number) =>
      withTimeout(
        (async () => {
          while (changeCount() < count) await delay(20);
        })(),
        15_000,
        `${count} watch lines`,
      );

    // The watch has subscribed once a write made after a short pause
    // shows up; retry a few times since startup takes a moment.
    let written = 0;
    for (let attempt = 0; attempt < 50 && changeCount() === 0; attempt++) {
      await client.set({ namespace, key: "probe", value: attempt });
      written++;
      await delay(100);
    }
    const before = changeCount();
    assert.ok(before > 0, "the watch printed the probe");
    for (let n = 1; n <= 5; n++) {
      await client.set({ namespace, key: `k${n}`, value: n });
    }
    await waitForLines(before + 5);

    await fixture.server.kill();
    await fixture.restartOnSamePort();
    const writer = await fixture.open();
    for (let n = 6; n <= 10; n++) {
      await writer.set({ namespace, key: `k${n}`, value: n });
    }
    await writer.close();
    await waitForLines(before + 10);
    watcher.kill("SIGINT");
    const code = await withTimeout(exited, 10_000, "the watch to exit");

    const changes = lines({ code, stdout, stderr }) as Array<{
      seq: number;
      key: string;
    }>;
    const seqs = changes.map((change) => change.seq);
    assert.equal(code, 0, stderr);
    assert.deepEqual(seqs, range(seqs[0], seqs[0] + seqs.length - 1));
    assert.deepEqual(
      changes.slice(-10).map((change) => change.key),
      range(1, 10).map((n) => `k${n}`),
    );
    assert.ok(written >= 1);
    assert.match(stderr, /connection lost \(close code 1006\); reconnecting/);
    assert.match(
      stderr,
      new RegExp(`resumed ${namespace} after seq ${seqs[before + 4]}`),
    );
    // The client reconnects through the new server; reset the test's
    // own client to it as well.
    await client.close();
    client = await fixture.openShared();
  });
});

describe("help", () => {
  it("top-level help lists commands and exit statuses", async () => {
    const result = await runCli(["--help"]);

    assert.equal(result.code, 0);
    for (const command of [
      "get",
      "set",
      "delete",
      "list",
      "namespaces",
      "mget",
      "batch",
      "watch",
      "serve",
      "keys",
    ]) {
      assert.match(result.stdout, new RegExp(`\\n  ${command} `), command);
    }
    assert.match(result.stdout, /2 {2}usage error/);
    assert.match(result.stdout, /3 {2}client error/);
  });

  it("subcommand help describes options with units", async () => {
    const result = await runCli(["set", "--help"]);

    assert.equal(result.code, 0);
    assert.match(result.stdout, /--cas <version>/);
    assert.match(result.stdout, /--timeout-ms <ms>\s+time in ms/);
    assert.match(result.stdout, /env: KVSTREAM_URL/);
    assert.match(result.stdout, /'-'\s+reads it from stdin/);
  });

  it("watch help names the resume", async () => {
    const result = await runCli(["watch", "--help"]);

    assert.equal(result.code, 0);
    assert.match(result.stdout, /--from-seq <seq>/);
    assert.match(result.stdout, /resumes/);
  });
});
