import { BenchClient, preloadKeys } from "./bench-client.js";
import { writeChanges } from "./change-writer.js";
import {
  isGeneratorSaturated,
  isMachineOversubscribed,
} from "./generator-load.js";
import type { GeneratorLoad } from "./tasks.js";
import { LatencyHistogram } from "./histogram.js";
import type { RedisRun } from "./redis.js";
import { sleep } from "./rpc-load.js";
import { cpuMilliseconds, residentBytes } from "./server-launch.js";
import type { Settings } from "./settings.js";
import type {
  OperationMix,
  RpcLoadResult,
  RpcLoadTask,
  WatchResult,
  WatchTask,
} from "./tasks.js";
import type { WorkerPool } from "./worker-pool.js";

/** Time for notifications still in flight after the last write's response. */
const deliveryGraceMs = 3_000;
const mebibyte = 1024 * 1024;

export type TargetName = "reference" | "kvstream";

/** A running server under test. */
export interface Target {
  name: TargetName;
  url: string;
  apiKey: string;
  pid: number;
  /** The coordinator's own connection, for preloads and writes. */
  client: BenchClient;
}

/** One run's figure on one server. */
export interface Sample {
  /** The scenario's main figure, in the unit of its `metric`. */
  value: number;
  p50Ms?: number;
  p99Ms?: number;
  /** Problems that make the figure suspect, such as errors or losses. */
  notes: string[];
}

export interface Scenario {
  id: string;
  kind: string;
  title: string;
  metric: string;
  higherIsBetter: boolean;
  /** True to start fresh servers for each run (memory figures). */
  isolated?: boolean;
  /** Servers this scenario runs on; the reference cannot list keys. */
  targets: TargetName[];
  /** Runs once per server before the measured runs. */
  prepare?(target: Target): Promise<void>;
  measure(target: Target): Promise<Sample>;
  /** The matching redis-benchmark run, where one exists. */
  redis?: RedisRun;
}

const bothTargets: TargetName[] = ["reference", "kvstream"];
const namespaceRoot = "tenant:demo/bench";

/** Notes on a generator that may have limited or delayed a run. */
function generatorNotes(load: GeneratorLoad, role: string): string[] {
  if (isGeneratorSaturated(load)) {
    return [`${role} saturated: a worker used over 0.9 of a core`];
  }
  if (isMachineOversubscribed(load)) {
    return [
      `${role} waited for the CPU (event loop delay p99 over 50 ms at low CPU use): other processes kept the cores busy`,
    ];
  }
  return [];
}

function rpcSample(result: RpcLoadResult): Sample {
  const latency = LatencyHistogram.fromSnapshot(result.latency);
  const notes: string[] = [];
  if (result.errors > 0) {
    notes.push(`${result.errors} errors, e.g. ${result.errorSamples[0]}`);
  }
  if (result.unsent > 0)
    notes.push(`${result.unsent} requests never sent (server behind schedule)`);
  notes.push(...generatorNotes(result.generator, "generator"));
  return {
    value: result.operations / result.seconds,
    p50Ms: latency.percentile(50) / 1000,
    p99Ms: latency.percentile(99) / 1000,
    notes,
  };
}

function watchNotes(result: WatchResult, expected: number): string[] {
  const notes: string[] = [];
  if (result.failed > 0)
    notes.push(
      `${result.failed} watch connections failed: ${result.firstError}`,
    );
  if (result.lost > 0)
    notes.push(`${result.lost} of ${expected} deliveries lost`);
  if (result.duplicated > 0) notes.push(`${result.duplicated} duplicated`);
  notes.push(...generatorNotes(result.generator, "watchers"));
  return notes;
}

/** Builds every scenario of one invocation, in the order they run. */
/** Completes a request load on `target` with the invocation's settings. */
function rpcTask(
  settings: Settings,
  target: Target,
  load: Pick<
    RpcLoadTask,
    "namespace" | "mix" | "connections" | "pipeline" | "keys" | "rate"
  >,
): RpcLoadTask {
  return {
    kind: "rpc",
    url: target.url,
    apiKey: target.apiKey,
    durationMs: settings.durationMs,
    warmupMs: settings.warmupMs,
    valueBytes: settings.valueBytes,
    listLimit: 100,
    ...load,
  };
}

/** Completes a set of watch connections to `target`. */
function watchTask(
  target: Target,
  watch: Pick<
    WatchTask,
    "connections" | "subscriptionsPerConnection" | "namespace" | "distinct"
  >,
): WatchTask {
  return {
    kind: "watch",
    url: target.url,
    apiKey: target.apiKey,
    workerIndex: 0,
    connectConcurrency: 100,
    ...watch,
  };
}

export function buildScenarios(
  settings: Settings,
  pool: WorkerPool,
): Scenario[] {
  const throughput = (
    id: string,
    title: string,
    mix: OperationMix,
    pipeline: number,
    redis?: Pick<RedisRun, "test" | "durable">,
  ): Scenario => {
    const namespace = `${namespaceRoot}/${id}`;
    return {
      id,
      kind: "throughput",
      title,
      metric: "requests/s",
      higherIsBetter: true,
      targets: bothTargets,
      prepare: (target) =>
        preloadKeys(target.client, {
          namespace,
          from: 0,
          to: settings.keys,
          valueBytes: settings.valueBytes,
        }),
      measure: async (target) =>
        rpcSample(
          await pool.runRpc(
            rpcTask(settings, target, {
              namespace,
              mix,
              connections: settings.connections,
              pipeline,
              keys: settings.keys,
              rate: 0,
            }),
          ),
        ),
      redis: redis && {
        ...redis,
        connections: settings.connections,
        pipeline,
        requests:
          redis.test === "get"
            ? settings.redisRequests.get
            : settings.redisRequests.set,
        keys: settings.keys,
        valueBytes: settings.valueBytes,
        timeoutMs: 120_000,
      },
    };
  };
  const c = settings.connections;
  const scenarios: Scenario[] = [
    throughput(
      "get-p1",
      `kv/get, ${c} connections x pipeline 1`,
      { get: 1, set: 0, list: 0 },
      1,
      { test: "get", durable: false },
    ),
    throughput(
      "get-p16",
      `kv/get, ${c} connections x pipeline 16`,
      { get: 1, set: 0, list: 0 },
      16,
      { test: "get", durable: false },
    ),
    throughput(
      "set-p1",
      `kv/set durable, ${c} connections x pipeline 1`,
      { get: 0, set: 1, list: 0 },
      1,
      { test: "set", durable: true },
    ),
    throughput(
      "set-p16",
      `kv/set durable, ${c} connections x pipeline 16`,
      { get: 0, set: 1, list: 0 },
      16,
      { test: "set", durable: true },
    ),
    throughput(
      "mix-90-10",
      `90% kv/get, 10% kv/set, ${c} connections x pipeline 16`,
      { get: 9, set: 1, list: 0 },
      16,
    ),
  ];

  for (const subscribers of settings.fanoutSubscribers) {
    scenarios.push(fanoutScenario(settings, pool, subscribers));
  }
  scenarios.push(idleScenario(settings, pool));
  for (const [index, keys] of settings.growthKeys.entries()) {
    scenarios.push(
      growthScenario(settings, pool, keys, settings.growthKeys[index - 1] ?? 0),
    );
  }
  for (const [index, keys] of settings.listSizes.entries()) {
    scenarios.push(
      listScenario(settings, pool, keys, settings.listSizes[index - 1] ?? 0),
    );
  }
  for (const others of settings.otherSubscriptions) {
    scenarios.push(otherSubscriptionsScenario(settings, pool, others));
  }
  return scenarios;
}

function fanoutScenario(
  settings: Settings,
  pool: WorkerPool,
  subscribers: number,
): Scenario {
  const namespace = `${namespaceRoot}/fanout-${subscribers}`;
  const rate = Math.max(1, settings.fanoutDeliveriesPerSecond / subscribers);
  const count = Math.max(2, Math.round((rate * settings.durationMs) / 1000));
  return {
    id: `fanout-${subscribers}`,
    kind: "fanout",
    title: `one writer to ${subscribers} subscribers of one namespace, ${count} changes at ${rate.toFixed(0)}/s`,
    metric: "p99 delivery ms",
    higherIsBetter: false,
    targets: bothTargets,
    measure: async (target) => {
      const opened = await pool.openWatchers(
        watchTask(target, {
          connections: subscribers,
          subscriptionsPerConnection: 1,
          namespace,
          distinct: false,
        }),
      );
      const seqs = await writeChanges(target.client, {
        namespace,
        count,
        rate,
        valueBytes: settings.valueBytes,
      });
      await sleep(deliveryGraceMs);
      const result = await pool.finishWatchers(seqs);
      const latency = LatencyHistogram.fromSnapshot(result.latency);
      const notes = watchNotes(result, seqs.length * opened.opened);
      return {
        value: latency.percentile(99) / 1000,
        p50Ms: latency.percentile(50) / 1000,
        p99Ms: latency.percentile(99) / 1000,
        notes,
      };
    },
  };
}

function idleScenario(settings: Settings, pool: WorkerPool): Scenario {
  const connections = settings.idleConnections;
  return {
    id: `idle-${connections}`,
    kind: "idle",
    title: `${connections} idle connections with one subscription each, fresh server per run`,
    metric: "MiB resident",
    higherIsBetter: false,
    targets: bothTargets,
    isolated: true,
    measure: async (target) => {
      const before = residentBytes(target.pid);
      const opened = await pool.openWatchers(
        watchTask(target, {
          connections,
          subscriptionsPerConnection: 1,
          namespace: `${namespaceRoot}/idle`,
          distinct: true,
        }),
      );
      // Let allocations made while connecting settle before reading VmRSS.
      await sleep(1_000);
      const after = residentBytes(target.pid);
      const result = await pool.finishWatchers([]);
      const perConnection = (after - before) / Math.max(1, opened.opened);
      return {
        value: after / mebibyte,
        notes: [
          `${(perConnection / 1024).toFixed(1)} KiB per connection over the ${(before / mebibyte).toFixed(1)} MiB of the idle process, ${opened.opened} connections`,
          ...watchNotes(result, 0),
        ],
      };
    },
  };
}

function growthScenario(
  settings: Settings,
  pool: WorkerPool,
  keys: number,
  loadedBefore: number,
): Scenario {
  const namespace = `${namespaceRoot}/growth`;
  return {
    id: `growth-${keys}`,
    kind: "growth",
    title: `kv/get latency with ${keys} keys, open loop at ${settings.growthRate}/s`,
    metric: "p50 ms",
    higherIsBetter: false,
    targets: bothTargets,
    // Each size adds to the keys of the size before, in one namespace.
    prepare: (target) =>
      preloadKeys(target.client, {
        namespace,
        from: loadedBefore,
        to: keys,
        valueBytes: settings.valueBytes,
      }),
    measure: async (target) => {
      const sample = rpcSample(
        await pool.runRpc(
          rpcTask(settings, target, {
            namespace,
            mix: { get: 1, set: 0, list: 0 },
            connections: 10,
            pipeline: 16,
            keys,
            rate: settings.growthRate,
          }),
        ),
      );
      return { ...sample, value: sample.p50Ms! };
    },
  };
}

function listScenario(
  settings: Settings,
  pool: WorkerPool,
  keys: number,
  loadedBefore: number,
): Scenario {
  const namespace = `${namespaceRoot}/list`;
  return {
    id: `list-${keys}`,
    kind: "list",
    title: `kv/list first page of 100 in a namespace of ${keys} keys, 4 connections x pipeline 1`,
    metric: "requests/s",
    higherIsBetter: true,
    targets: ["kvstream"],
    prepare: (target) =>
      preloadKeys(target.client, {
        namespace,
        from: loadedBefore,
        to: keys,
        valueBytes: settings.valueBytes,
      }),
    measure: async (target) =>
      rpcSample(
        await pool.runRpc(
          rpcTask(settings, target, {
            namespace,
            mix: { get: 0, set: 0, list: 1 },
            connections: 4,
            pipeline: 1,
            keys,
            rate: 0,
          }),
        ),
      ),
  };
}

function otherSubscriptionsScenario(
  settings: Settings,
  pool: WorkerPool,
  others: number,
): Scenario {
  const perConnection = 50;
  const count = Math.max(
    10,
    Math.round((settings.otherWriteRate * settings.durationMs) / 1000),
  );
  // The writes go to a namespace that none of the subscriptions covers.
  const target = `${namespaceRoot}/others-target`;
  return {
    id: `other-subs-${others}`,
    kind: "other-subs",
    title: `server CPU per change with ${others} subscriptions on other namespaces, ${count} writes at ${settings.otherWriteRate}/s`,
    metric: "server CPU us/change",
    higherIsBetter: false,
    targets: bothTargets,
    measure: async (server) => {
      const opened = await pool.openWatchers(
        watchTask(server, {
          connections: Math.ceil(others / perConnection),
          subscriptionsPerConnection: perConnection,
          namespace: `${namespaceRoot}/others`,
          distinct: true,
        }),
      );
      const cpuBefore = cpuMilliseconds(server.pid);
      const seqs = await writeChanges(server.client, {
        namespace: target,
        count,
        rate: settings.otherWriteRate,
        valueBytes: settings.valueBytes,
      });
      const cpuAfter = cpuMilliseconds(server.pid);
      const result = await pool.finishWatchers([]);
      return {
        value: ((cpuAfter - cpuBefore) * 1000) / seqs.length,
        notes: [
          ...(opened.opened * perConnection < others
            ? [
                `only ${opened.opened * perConnection} of ${others} other subscriptions opened`,
              ]
            : []),
          ...watchNotes(result, 0),
        ],
      };
    },
  };
}
