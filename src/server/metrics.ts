import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";

import { errorCatalog } from "../protocol/errors.js";
import { methods } from "../protocol/schemas.js";

const knownMethods = new Set([
  ...methods.map((method) => method.name),
  "rpc.discover",
]);
const codeNames = new Map<number, string>(
  errorCatalog.map((entry) => [
    entry.code,
    entry.name.toLowerCase().replaceAll(" ", "_"),
  ]),
);

/**
 * Prometheus metrics of one server. /metrics needs no key, so no label
 * ever carries a tenant id, namespace or key: methods outside the API's
 * fixed list are counted as "other".
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"method" | "outcome">;
  readonly connections: Gauge;
  readonly slowConsumerCloses: Counter;
  readonly revocationCloses: Counter;

  constructor(sources: {
    subscriptions: () => number;
    changesPublished: () => number;
  }) {
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: "kvstream_requests_total",
      help: "JSON-RPC requests handled, by method and outcome (ok or the error name).",
      labelNames: ["method", "outcome"],
      registers: [this.registry],
    });
    this.connections = new Gauge({
      name: "kvstream_connections",
      help: "Open WebSocket connections.",
      registers: [this.registry],
    });
    this.slowConsumerCloses = new Counter({
      name: "kvstream_slow_consumer_closes_total",
      help: "Connections closed with 4008 because their unsent data passed the outbound limit.",
      registers: [this.registry],
    });
    this.revocationCloses = new Counter({
      name: "kvstream_revocation_closes_total",
      help: "Connections closed with 4401 because their API key was revoked.",
      registers: [this.registry],
    });
    new Gauge({
      name: "kvstream_subscriptions",
      help: "Active watch subscriptions on this process.",
      registers: [this.registry],
      collect() {
        this.set(sources.subscriptions());
      },
    });
    new Gauge({
      name: "kvstream_changes_published",
      help: "Changes handed to the watch fan-out since the process started.",
      registers: [this.registry],
      collect() {
        this.set(sources.changesPublished());
      },
    });
  }

  observeRequest(method: string, code: number): void {
    const label = knownMethods.has(method) ? method : "other";
    const outcome = code === 0 ? "ok" : (codeNames.get(code) ?? "error");
    this.requests.inc({ method: label, outcome });
  }
}
