import type WebSocket from "ws";

import { openSocket } from "./rpc-load.js";

/** Keys written per kv/batch while preloading; the protocol allows 500. */
const preloadBatchSize = 500;
/** kv/batch requests in flight at once while preloading. */
const preloadPipeline = 4;

/** A minimal JSON-RPC client for the coordinator's own requests. */
export class BenchClient {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve(result: any): void; reject(error: Error): void }
  >();

  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data) => {
      const message = JSON.parse(data.toString());
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.error) {
        waiter.reject(
          new Error(`${message.error.code}: ${message.error.message}`),
        );
      } else {
        waiter.resolve(message.result);
      }
    });
    socket.on("close", (code) => {
      for (const waiter of this.pending.values()) {
        waiter.reject(new Error(`connection closed with ${code}`));
      }
      this.pending.clear();
    });
  }

  static async connect(url: string, apiKey: string): Promise<BenchClient> {
    return new BenchClient(await openSocket({ url, apiKey }));
  }

  request(method: string, params: unknown): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  close(): void {
    this.socket.terminate();
  }
}

/**
 * Writes keys `k<from>` to `k<to - 1>` through the protocol with kv/batch
 * (500 sets per batch, 4 batches in flight), each with a string value of
 * `valueBytes` bytes as JSON.
 */
export async function preloadKeys(
  client: BenchClient,
  options: { namespace: string; from: number; to: number; valueBytes: number },
): Promise<void> {
  const value = "v".repeat(Math.max(0, options.valueBytes - 2));
  let next = options.from;
  const sendBatches = async (): Promise<void> => {
    while (next < options.to) {
      const start = next;
      const end = Math.min(options.to, start + preloadBatchSize);
      next = end;
      const operations = [];
      for (let index = start; index < end; index++) {
        operations.push({
          op: "set",
          namespace: options.namespace,
          key: `k${index}`,
          value,
        });
      }
      await client.request("kv/batch", { operations });
    }
  };
  await Promise.all(Array.from({ length: preloadPipeline }, sendBatches));
}
