import { fork, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { LatencyHistogram } from "./histogram.js";
import type {
  GeneratorLoad,
  RpcLoadResult,
  RpcLoadTask,
  WatchResult,
  WatchTask,
  WorkerCommand,
  WorkerReply,
} from "./tasks.js";

const workerPath = join(
  dirname(fileURLToPath(import.meta.url)),
  "load-worker.js",
);

/** Splits `total` into `parts` whole shares that differ by at most one. */
export function split(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, index) => Math.floor(total / parts) + (index < total % parts ? 1 : 0),
  );
}

/** A set of load generator processes, started once and reused per run. */
export class WorkerPool {
  private readonly workers: ChildProcess[];

  constructor(count: number) {
    this.workers = Array.from({ length: count }, () =>
      fork(workerPath, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] }),
    );
  }

  get size(): number {
    return this.workers.length;
  }

  /** Runs a request load spread over the workers and merges the results. */
  async runRpc(task: RpcLoadTask): Promise<RpcLoadResult> {
    const active = this.workers.slice(0, Math.min(this.size, task.connections));
    const connections = split(task.connections, active.length);
    const results = await Promise.all(
      active.map((worker, index) =>
        this.request(worker, {
          command: "run",
          task: {
            ...task,
            connections: connections[index],
            rate: (task.rate * connections[index]) / task.connections,
          },
        }).then((reply) => expectReply(reply, "rpc-done").result),
      ),
    );
    return mergeRpcResults(results);
  }

  /** Opens the watch connections, spread over the workers. */
  async openWatchers(
    task: WatchTask,
  ): Promise<{ opened: number; failed: number; firstError: string | null }> {
    const connections = split(task.connections, this.size);
    const replies = await Promise.all(
      this.workers.map((worker, index) =>
        this.request(worker, {
          command: "watch",
          task: {
            ...task,
            connections: connections[index],
            workerIndex: index,
          },
        }).then((reply) => expectReply(reply, "watching")),
      ),
    );
    return {
      opened: replies.reduce((sum, reply) => sum + reply.opened, 0),
      failed: replies.reduce((sum, reply) => sum + reply.failed, 0),
      firstError: replies.find((reply) => reply.firstError)?.firstError ?? null,
    };
  }

  /** Closes the watch connections and merges what they received. */
  async finishWatchers(expectedSeqs: number[]): Promise<WatchResult> {
    const results = await Promise.all(
      this.workers.map((worker) =>
        this.request(worker, { command: "finish", expectedSeqs }).then(
          (reply) => expectReply(reply, "watch-done").result,
        ),
      ),
    );
    return mergeWatchResults(results);
  }

  close(): void {
    for (const worker of this.workers) worker.disconnect();
  }

  private request(
    worker: ChildProcess,
    command: WorkerCommand,
  ): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) =>
        reject(new Error(`load worker ${worker.pid} exited with ${code}`));
      worker.once("exit", onExit);
      worker.once("message", (reply: WorkerReply) => {
        worker.off("exit", onExit);
        resolve(reply);
      });
      worker.send(command);
    });
  }
}

function expectReply<Kind extends WorkerReply["reply"]>(
  reply: WorkerReply,
  kind: Kind,
): Extract<WorkerReply, { reply: Kind }> {
  if (reply.reply === "failed")
    throw new Error(`load worker failed: ${reply.message}`);
  if (reply.reply !== kind)
    throw new Error(`load worker sent ${reply.reply}, expected ${kind}`);
  return reply as Extract<WorkerReply, { reply: Kind }>;
}

/** The busiest worker decides whether the generator limited the run. */
function busiest(loads: GeneratorLoad[]): GeneratorLoad {
  return {
    cpuFraction: Math.max(...loads.map((load) => load.cpuFraction)),
    loopDelayP99Ms: Math.max(...loads.map((load) => load.loopDelayP99Ms)),
  };
}

function mergeRpcResults(results: RpcLoadResult[]): RpcLoadResult {
  const latency = new LatencyHistogram();
  for (const result of results) latency.merge(result.latency);
  return {
    operations: sum(results.map((result) => result.operations)),
    errors: sum(results.map((result) => result.errors)),
    errorSamples: results.flatMap((result) => result.errorSamples).slice(0, 3),
    seconds: results[0].seconds,
    latency: latency.snapshot(),
    unsent: sum(results.map((result) => result.unsent)),
    generator: busiest(results.map((result) => result.generator)),
  };
}

function mergeWatchResults(results: WatchResult[]): WatchResult {
  const latency = new LatencyHistogram();
  for (const result of results) latency.merge(result.latency);
  return {
    connections: sum(results.map((result) => result.connections)),
    subscriptions: sum(results.map((result) => result.subscriptions)),
    delivered: sum(results.map((result) => result.delivered)),
    lost: sum(results.map((result) => result.lost)),
    duplicated: sum(results.map((result) => result.duplicated)),
    latency: latency.snapshot(),
    failed: sum(results.map((result) => result.failed)),
    firstError: results.find((result) => result.firstError)?.firstError ?? null,
    generator: busiest(results.map((result) => result.generator)),
  };
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
