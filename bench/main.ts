/**
 * `npm run bench`: runs the reference server and kvstream under the same
 * loads, one after the other within each scenario, and prints the
 * medians and the ratio kvstream / reference per scenario, and kvstream /
 * Redis where redis-server and redis-benchmark are installed.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { Command, Option } from "commander";

import { BenchClient } from "./bench-client.js";
import { isRedisInstalled, runRedisBenchmark } from "./redis.js";
import {
  buildRow,
  checkTargets,
  formatTable,
  machineInfo,
  type Report,
  type Row,
} from "./report.js";
import {
  buildScenarios,
  type Sample,
  type Scenario,
  type Target,
  type TargetName,
} from "./scenarios.js";
import { launchServer, type LaunchedServer } from "./server-launch.js";
import { fullSettings, quickSettings, type Settings } from "./settings.js";
import { WorkerPool } from "./worker-pool.js";

const distRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const cliPath = join(distRoot, "src", "cli", "main.js");
const referencePath = join(distRoot, "bench", "reference-server.js");

interface Options {
  quick: boolean;
  json: boolean;
  runs?: number;
  durationMs?: number;
  workers?: number;
  only?: string;
  redis: boolean;
  profile?: string;
}

function positiveInteger(name: string) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new Error(
        `${name} must be a whole number of at least 1, not '${text}'.`,
      );
    }
    return value;
  };
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

async function startTargets(
  storeDir: string,
  options: Options,
): Promise<{ servers: LaunchedServer[]; targets: Target[] }> {
  const servers: LaunchedServer[] = [];
  const targets: Target[] = [];
  const reference = await launchServer({ script: referencePath, args: ["0"] });
  servers.push(reference);
  const kvstream = await launchServer({
    script: cliPath,
    args: [
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--store",
      `sqlite:${join(storeDir, "kvstream.db")}`,
    ],
    nodeFlags: options.profile
      ? ["--cpu-prof", "--cpu-prof-dir", resolve(options.profile)]
      : [],
  });
  servers.push(kvstream);
  if (!kvstream.demoKey)
    throw new Error("kvstream did not print a key for its fresh store");

  for (const [name, server, apiKey] of [
    ["reference", reference, "unused"],
    ["kvstream", kvstream, kvstream.demoKey],
  ] as Array<[TargetName, LaunchedServer, string]>) {
    targets.push({
      name,
      url: server.url,
      apiKey,
      pid: server.pid,
      client: await BenchClient.connect(server.url, apiKey),
    });
  }
  return { servers, targets };
}

async function runScenario(
  scenario: Scenario,
  targets: Target[],
  settings: Settings,
  redisAvailable: boolean,
): Promise<Row> {
  const samples: Record<TargetName | "redis", Sample[]> = {
    reference: [],
    kvstream: [],
    redis: [],
  };
  const failures: string[] = [];
  const active = targets.filter((target) =>
    scenario.targets.includes(target.name),
  );
  log(`${scenario.id}: ${scenario.title}`);
  for (const target of active) {
    if (!scenario.prepare) continue;
    const startedAt = performance.now();
    await scenario.prepare(target);
    log(
      `  prepared ${target.name} in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`,
    );
  }
  for (let run = 1; run <= settings.runs; run++) {
    for (const target of active) {
      try {
        const sample = await scenario.measure(target);
        samples[target.name].push(sample);
        log(
          `  run ${run} ${target.name}: ${sample.value.toFixed(2)} ${scenario.metric}`,
        );
      } catch (error) {
        failures.push(
          `${target.name}: run ${run} failed: ${(error as Error).message}`,
        );
        log(`  run ${run} ${target.name} failed: ${(error as Error).message}`);
      }
    }
    if (scenario.redis && redisAvailable) {
      try {
        const result = await runRedisBenchmark(scenario.redis);
        samples.redis.push({
          value: result.requestsPerSecond,
          p50Ms: result.p50Ms,
          p99Ms: result.p99Ms,
          notes: [],
        });
        log(
          `  run ${run} redis: ${result.requestsPerSecond.toFixed(0)} requests/s`,
        );
      } catch (error) {
        failures.push(`redis: run ${run} failed: ${(error as Error).message}`);
      }
    }
  }
  const row = buildRow(scenario, samples);
  row.notes.push(...failures);
  return row;
}

async function main(): Promise<void> {
  const program = new Command("bench")
    .description(
      "benchmark kvstream against a bare Node.js WebSocket server and Redis",
    )
    .option(
      "--quick",
      "tiny loads for development: seconds in total, one run each",
      false,
    )
    .option("--json", "print the report as JSON instead of a table", false)
    .addOption(
      new Option(
        "--runs <count>",
        "runs of each scenario on each server",
      ).argParser(positiveInteger("--runs")),
    )
    .addOption(
      new Option(
        "--duration-ms <ms>",
        "measured time of each load run, in ms",
      ).argParser(positiveInteger("--duration-ms")),
    )
    .addOption(
      new Option("--workers <count>", "load generator processes").argParser(
        positiveInteger("--workers"),
      ),
    )
    .option(
      "--only <ids>",
      "comma-separated scenario ids or id prefixes to run, such as get-p16,fanout",
    )
    .option("--no-redis", "skip the redis-benchmark comparison")
    .option(
      "--profile <dir>",
      "write a V8 CPU profile of the kvstream server into this directory",
    );
  program.parse();
  const options = program.opts<Options>();

  const settings: Settings = {
    ...(options.quick ? quickSettings : fullSettings),
  };
  if (options.runs) settings.runs = options.runs;
  if (options.durationMs) settings.durationMs = options.durationMs;
  if (options.workers) settings.workers = options.workers;

  const redisAvailable = options.redis && isRedisInstalled();
  if (options.redis && !redisAvailable)
    log(
      "redis-server or redis-benchmark not found; the Redis column stays empty",
    );

  const storeDir = await mkdtemp(join(tmpdir(), "kvstream-bench-"));
  const pool = new WorkerPool(settings.workers);
  let servers: LaunchedServer[] = [];
  let targets: Target[] = [];
  try {
    ({ servers, targets } = await startTargets(storeDir, options));
    let scenarios = buildScenarios(settings, pool);
    if (options.only) {
      const wanted = options.only
        .split(",")
        .map((id) => id.trim())
        .filter(Boolean);
      scenarios = scenarios.filter((scenario) =>
        wanted.some((id) => scenario.id.startsWith(id)),
      );
      if (scenarios.length === 0)
        throw new Error(`--only '${options.only}' matches no scenario id`);
    }

    const rows: Row[] = [];
    for (const scenario of scenarios)
      rows.push(await runScenario(scenario, targets, settings, redisAvailable));
    const report: Report = {
      machine: machineInfo(),
      settings,
      rows,
      targets: checkTargets(rows, settings),
    };
    process.stdout.write(
      options.json
        ? `${JSON.stringify(report, null, 2)}\n`
        : formatTable(report),
    );
  } finally {
    for (const target of targets) target.client.close();
    await Promise.all(servers.map((server) => server.stop()));
    pool.close();
    await rm(storeDir, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
