import type { HistogramSnapshot } from "./histogram.js";

/** Relative weights of the operations a load sends. */
export interface OperationMix {
  get: number;
  set: number;
  list: number;
}

/** One load generator process's share of a request load. */
export interface RpcLoadTask {
  kind: "rpc";
  url: string;
  apiKey: string;
  connections: number;
  /** Requests each connection keeps in flight, each in its own frame. */
  pipeline: number;
  durationMs: number;
  /** Time at the start whose results are not counted, in ms. */
  warmupMs: number;
  mix: OperationMix;
  namespace: string;
  /** Keys are `k0` to `k<keys - 1>`, chosen uniformly at random. */
  keys: number;
  /** Size of each set value as compact JSON, in bytes. */
  valueBytes: number;
  /** kv/list page size. */
  listLimit: number;
  /**
   * Requests per second for this process (open loop), or 0 for a closed
   * loop where each response releases the next request.
   */
  rate: number;
}

export interface RpcLoadResult {
  /** Responses received inside the measured window. */
  operations: number;
  errors: number;
  /** The first few error responses, as sent, to tell what went wrong. */
  errorSamples: string[];
  /** Seconds of the measured window. */
  seconds: number;
  latency: HistogramSnapshot;
  /** Open loop only: requests never sent because the window was full. */
  unsent: number;
  generator: GeneratorLoad;
}

/** Load of the generator process itself, to tell if it limited the run. */
export interface GeneratorLoad {
  /** CPU time of the generator divided by wall time (1 = one full core). */
  cpuFraction: number;
  /** 99th percentile of the generator's event loop delay, in ms. */
  loopDelayP99Ms: number;
}

/** One watcher process's share of the watch connections. */
export interface WatchTask {
  kind: "watch";
  url: string;
  apiKey: string;
  connections: number;
  subscriptionsPerConnection: number;
  /**
   * With `distinct`, each subscription gets its own namespace below
   * `namespace`; otherwise every connection watches `namespace` itself.
   */
  namespace: string;
  distinct: boolean;
  /** Index of this process, to keep distinct namespaces apart. */
  workerIndex: number;
  /** Connections opened at once while connecting. */
  connectConcurrency: number;
}

export interface WatchResult {
  connections: number;
  subscriptions: number;
  /** Notifications received whose seq was among the expected ones. */
  delivered: number;
  /** Expected (connection, seq) pairs that never arrived. */
  lost: number;
  /** Notifications whose seq this connection had already received. */
  duplicated: number;
  /** Delivery latency from the writer's send time, in microseconds. */
  latency: HistogramSnapshot;
  /** Connections that failed to open or subscribe, with the first error. */
  failed: number;
  firstError: string | null;
  generator: GeneratorLoad;
}

/** Messages from the coordinator to a worker process. */
export type WorkerCommand =
  | { command: "run"; task: RpcLoadTask }
  | { command: "watch"; task: WatchTask }
  | { command: "finish"; expectedSeqs: number[] };

/** Messages from a worker process to the coordinator. */
export type WorkerReply =
  | { reply: "rpc-done"; result: RpcLoadResult }
  | {
      reply: "watching";
      opened: number;
      failed: number;
      firstError: string | null;
    }
  | { reply: "watch-done"; result: WatchResult }
  | { reply: "failed"; message: string };
