/**
 * `npm run bench`: runs the reference server and kvstream under the same
 * loads, one after the other within each scenario, and prints the
 * medians and the ratio kvstream / reference per scenario, and kvstream /
 * Redis where redis-server and redis-benchmark are installed.
 */
import { Command, Option } from "commander";

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
  type TargetName,
} from "./scenarios.js";
import { ServerPair, type ServerPairOptions } from "./server-pair.js";
import { fullSettings, quickSettings, type Settings } from "./settings.js";
import { WorkerPool } from "./worker-pool.js";

interface Options {
  quick: boolean;
  json: boolean;
  runs?: number;
  durationMs?: number;
  workers?: number;
  only?: string;
  redis: boolean;
  profile?: string;
  referenceCoalesce: boolean;
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

function pairOptions(options: Options): ServerPairOptions {
  return {
    profileDir: options.profile,
    referenceCoalesce: options.referenceCoalesce,
  };
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/**
 * Measures one scenario on every server. An isolated scenario gets a
 * fresh pair of servers for each run, so that what earlier runs left in
 * memory does not count.
 */
async function runScenario(
  scenario: Scenario,
  shared: ServerPair,
  settings: Settings,
  options: Options,
  redisAvailable: boolean,
): Promise<Row> {
  const samples: Record<TargetName | "redis", Sample[]> = {
    reference: [],
    kvstream: [],
    redis: [],
  };
  const failures: string[] = [];
  const activeIn = (pair: ServerPair) =>
    pair.targets.filter((target) => scenario.targets.includes(target.name));
  const prepare = async (pair: ServerPair) => {
    if (!scenario.prepare) return;
    for (const target of activeIn(pair)) {
      const startedAt = performance.now();
      await scenario.prepare(target);
      const seconds = (performance.now() - startedAt) / 1000;
      log(`  prepared ${target.name} in ${seconds.toFixed(1)} s`);
    }
  };

  log(`${scenario.id}: ${scenario.title}`);
  if (!scenario.isolated) await prepare(shared);
  for (let run = 1; run <= settings.runs; run++) {
    const pair = scenario.isolated
      ? await ServerPair.start(pairOptions(options))
      : shared;
    if (scenario.isolated) await prepare(pair);
    for (const target of activeIn(pair)) {
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
    if (scenario.isolated) await pair.stop();
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
      "--no-reference-coalesce",
      "let the reference server write each frame at once instead of coalescing writes per event loop turn",
    )
    .option(
      "--profile <dir>",
      "write V8 CPU profiles of both servers into this directory (file names carry the process id)",
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

  const pool = new WorkerPool(settings.workers);
  let shared: ServerPair | undefined;
  try {
    shared = await ServerPair.start(pairOptions(options));
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
      rows.push(
        await runScenario(scenario, shared, settings, options, redisAvailable),
      );
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
    await shared?.stop();
    pool.close();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
