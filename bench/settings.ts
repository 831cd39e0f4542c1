/** Sizes and durations of one benchmark invocation. */
export interface Settings {
  quick: boolean;
  /** Runs of each scenario on each server; tables show the median. */
  runs: number;
  durationMs: number;
  warmupMs: number;
  /** Load generator processes. */
  workers: number;
  /** Connections of the throughput scenarios. */
  connections: number;
  /** Keys of the throughput scenarios. */
  keys: number;
  valueBytes: number;
  fanoutSubscribers: number[];
  /** Notifications per second all watchers receive together. */
  fanoutDeliveriesPerSecond: number;
  idleConnections: number;
  growthKeys: number[];
  /** Fixed request rate of the growth scenarios, per second. */
  growthRate: number;
  listSizes: number[];
  otherSubscriptions: number[];
  /** Writes per second while measuring fan-out cost. */
  otherWriteRate: number;
  redisRequests: { get: number; set: number };
}

/** Full runs: about 15 minutes on 2 cores. */
export const fullSettings: Settings = {
  quick: false,
  runs: 3,
  durationMs: 5_000,
  warmupMs: 1_000,
  workers: 2,
  connections: 50,
  keys: 10_000,
  valueBytes: 100,
  fanoutSubscribers: [1_000, 10_000],
  fanoutDeliveriesPerSecond: 20_000,
  idleConnections: 10_000,
  growthKeys: [1_000, 100_000, 1_000_000],
  growthRate: 2_000,
  listSizes: [100, 1_000, 10_000],
  otherSubscriptions: [0, 1_000, 10_000],
  otherWriteRate: 200,
  redisRequests: { get: 500_000, set: 50_000 },
};

/** Development runs: seconds, tiny loads, one run each. */
export const quickSettings: Settings = {
  quick: true,
  runs: 1,
  durationMs: 500,
  warmupMs: 200,
  workers: 2,
  connections: 10,
  keys: 200,
  valueBytes: 100,
  fanoutSubscribers: [20, 100],
  fanoutDeliveriesPerSecond: 1_000,
  idleConnections: 100,
  growthKeys: [100, 1_000],
  growthRate: 200,
  listSizes: [10, 100],
  otherSubscriptions: [0, 100],
  otherWriteRate: 50,
  redisRequests: { get: 2_000, set: 500 },
};
