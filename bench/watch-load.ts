import type WebSocket from "ws";

import { GeneratorLoadMeter } from "./generator-load.js";
import { LatencyHistogram } from "./histogram.js";
import { openSocket } from "./rpc-load.js";
import type { WatchResult, WatchTask } from "./tasks.js";

/** Milliseconds since the Unix epoch with sub-millisecond precision. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

interface Watcher {
  socket: WebSocket;
  /** Seqs received on this connection. */
  seqs: Set<number>;
}

/**
 * The watch connections of one worker process. Each change's value
 * carries the writer's send time as `sentAt` (epoch ms), so the delivery
 * latency is measured across processes on the same machine's clock.
 */
export class WatcherGroup {
  private readonly watchers: Watcher[] = [];
  private readonly latency = new LatencyHistogram();
  private readonly meter = new GeneratorLoadMeter();
  private duplicated = 0;
  private failed = 0;
  private firstError: string | null = null;

  constructor(private readonly task: WatchTask) {}

  /** Opens and subscribes every connection; resolves once all got a response. */
  async open(): Promise<{
    opened: number;
    failed: number;
    firstError: string | null;
  }> {
    const { connections, connectConcurrency } = this.task;
    let next = 0;
    const openOne = async (): Promise<void> => {
      while (next < connections) {
        const index = next++;
        try {
          this.watchers.push(await this.subscribe(index));
        } catch (error) {
          this.failed++;
          this.firstError ??= (error as Error).message;
        }
      }
    };
    await Promise.all(
      Array.from(
        { length: Math.min(connectConcurrency, connections) },
        openOne,
      ),
    );
    this.meter.start();
    return {
      opened: this.watchers.length,
      failed: this.failed,
      firstError: this.firstError,
    };
  }

  private async subscribe(index: number): Promise<Watcher> {
    const socket = await openSocket(this.task);
    const watcher: Watcher = { socket, seqs: new Set() };
    const count = this.task.subscriptionsPerConnection;
    let answered = 0;
    const subscribed = new Promise<void>((resolve, reject) => {
      socket.on("message", (data) => {
        const text = data.toString();
        if (text.includes('"method":"watch/change"')) {
          this.receive(watcher, text);
          return;
        }
        const message = JSON.parse(text);
        if (message.error) {
          reject(
            new Error(
              `watch/subscribe failed: ${JSON.stringify(message.error)}`,
            ),
          );
          return;
        }
        if (++answered === count) resolve();
      });
      socket.once("close", (code) =>
        reject(new Error(`closed with ${code} while subscribing`)),
      );
    });
    for (let subscription = 0; subscription < count; subscription++) {
      const namespace = this.task.distinct
        ? `${this.task.namespace}/w${this.task.workerIndex}-${index}-${subscription}`
        : this.task.namespace;
      socket.send(
        JSON.stringify({
          jsonrpc: "2.0",
          id: subscription + 1,
          method: "watch/subscribe",
          params: { namespace },
        }),
      );
    }
    await subscribed;
    return watcher;
  }

  private receive(watcher: Watcher, text: string): void {
    const now = epochNow();
    const { params } = JSON.parse(text) as {
      params: { seq: number; value?: { sentAt?: number } };
    };
    if (watcher.seqs.has(params.seq)) this.duplicated++;
    else watcher.seqs.add(params.seq);
    const sentAt = params.value?.sentAt;
    if (typeof sentAt === "number") this.latency.record((now - sentAt) * 1000);
  }

  /** Counts what each connection missed of `expectedSeqs` and closes all. */
  finish(expectedSeqs: number[]): WatchResult {
    const generator = this.meter.stop();
    let delivered = 0;
    let lost = 0;
    for (const watcher of this.watchers) {
      for (const seq of expectedSeqs) {
        if (watcher.seqs.has(seq)) delivered++;
        else lost++;
      }
      watcher.socket.terminate();
    }
    return {
      connections: this.watchers.length,
      subscriptions:
        this.watchers.length * this.task.subscriptionsPerConnection,
      delivered,
      lost,
      duplicated: this.duplicated,
      latency: this.latency.snapshot(),
      failed: this.failed,
      firstError: this.firstError,
      generator,
    };
  }
}
