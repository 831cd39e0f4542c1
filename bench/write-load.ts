/**
 * Measures kvstream throughput and latency against real server processes:
 * starts `--servers` processes on one store, opens `--connections`
 * WebSocket connections spread over them, keeps `--in-flight` requests
 * outstanding on each for `--seconds`, and prints requests per second
 * and latency percentiles. With `--watchers`, that many extra connections
 * watch the tenant and the run reports how many changes reached them.
 *
 *   node dist/bench/write-load.js --store postgres://...?schema=kvs_bench \
 *     --servers 2 --connections 8 --in-flight 16 --seconds 10 --method kv/set
 */
import { parseArgs } from "node:util";

import { TestClient } from "../test/support/rpc-client.js";
import {
  createKey,
  startServer,
  type ServerProcess,
} from "../test/support/server-process.js";

const { values } = parseArgs({
  options: {
    store: { type: "string" },
    servers: { type: "string", default: "1" },
    connections: { type: "string", default: "8" },
    "in-flight": { type: "string", default: "16" },
    seconds: { type: "string", default: "10" },
    method: { type: "string", default: "kv/set" },
    keys: { type: "string", default: "1000" },
    watchers: { type: "string", default: "0" },
    tenants: { type: "string", default: "1" },
  },
});

function positive(name: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`--${name} must be a whole number, not '${text}'`);
  }
  return value;
}

if (!values.store) {
  throw new Error("--store is required, as in --store sqlite:/tmp/bench.db");
}
const store = values.store;
const serverCount = positive("servers", values.servers);
const connectionCount = positive("connections", values.connections);
const inFlight = positive("in-flight", values["in-flight"]);
const seconds = positive("seconds", values.seconds);
const keyCount = positive("keys", values.keys);
const watcherCount = positive("watchers", values.watchers);
const tenantCount = Math.max(1, positive("tenants", values.tenants));
const method = values.method!;
if (!["kv/set", "kv/get"].includes(method)) {
  throw new Error(`--method must be kv/set or kv/get, not '${method}'`);
}

// Connection i writes as tenant bench<i % tenants>; watchers watch bench0.
const apiKeys: string[] = [];
for (let index = 0; index < tenantCount; index++) {
  apiKeys.push((await createKey(store, { tenant: `bench${index}` })).key);
}
const key = apiKeys[0];
const namespaceOf = (tenant: number) => `tenant:bench${tenant}/load`;
const servers: ServerProcess[] = [];
for (let index = 0; index < serverCount; index++) {
  servers.push(await startServer({ store }));
}
const watchers: TestClient[] = [];
for (let index = 0; index < watcherCount; index++) {
  const watcher = await TestClient.connect(servers[index % serverCount].url, {
    apiKey: key,
  });
  await watcher.call("watch/subscribe", { namespace: "tenant:bench0" });
  watchers.push(watcher);
}
const clients: TestClient[] = [];
for (let index = 0; index < connectionCount; index++) {
  clients.push(
    await TestClient.connect(servers[index % serverCount].url, {
      apiKey: apiKeys[index % tenantCount],
    }),
  );
}
if (method === "kv/get") {
  for (let index = 0; index < keyCount; index += 100) {
    await clients[0].call("kv/batch", {
      operations: Array.from({ length: 100 }, (_, offset) => ({
        op: "set",
        namespace: namespaceOf(0),
        key: `k${index + offset}`,
        value: { n: index + offset },
      })),
    });
  }
}

const latencies: number[] = [];
let errors = 0;
let counter = 0;
const deadline = performance.now() + seconds * 1000;

async function worker(client: TestClient, tenant: number): Promise<void> {
  while (performance.now() < deadline) {
    const n = counter++;
    const params: Record<string, unknown> = {
      namespace: namespaceOf(method === "kv/get" ? 0 : tenant),
      key: `k${n % keyCount}`,
    };
    if (method === "kv/set") params.value = { n, pad: "x".repeat(100) };
    const started = performance.now();
    const response = await client.request(method, params);
    latencies.push(performance.now() - started);
    if (response.error) errors++;
  }
}

const startedAt = performance.now();
await Promise.all(
  clients.flatMap((client, index) =>
    Array.from({ length: inFlight }, () => worker(client, index % tenantCount)),
  ),
);
const elapsed = (performance.now() - startedAt) / 1000;

latencies.sort((a, b) => a - b);
const percentile = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
const changesSeen = watchers.map((watcher) => watcher.changes.length);
if (watchers.length > 0) await new Promise((r) => setTimeout(r, 1000));
console.log(
  JSON.stringify({
    store: store.replace(/\?.*$/, ""),
    method,
    servers: serverCount,
    tenants: tenantCount,
    connections: connectionCount,
    inFlight,
    requests: latencies.length,
    errors,
    perSecond: Math.round(latencies.length / elapsed),
    p50Ms: Number(percentile(0.5).toFixed(2)),
    p99Ms: Number(percentile(0.99).toFixed(2)),
    watcherChangesAtEnd: changesSeen,
    watcherChangesAfter1s: watchers.map((watcher) => watcher.changes.length),
  }),
);

for (const client of [...clients, ...watchers]) await client.close();
for (const server of servers) await server.stop();
