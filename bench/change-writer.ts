import type { BenchClient } from "./bench-client.js";
import { sleep } from "./rpc-load.js";
import { epochNow } from "./watch-load.js";

/**
 * Sends `count` kv/set requests at a fixed rate without waiting for the
 * responses, each value carrying its send time as `sentAt` (epoch ms), and
 * returns the seq of every write.
 */
export async function writeChanges(
  client: BenchClient,
  options: {
    namespace: string;
    count: number;
    rate: number;
    valueBytes: number;
  },
): Promise<number[]> {
  const pad = "v".repeat(Math.max(0, options.valueBytes - 40));
  const intervalMs = 1000 / options.rate;
  const startedAt = performance.now();
  const answers: Array<Promise<{ seq: number }>> = [];
  for (let index = 0; index < options.count; index++) {
    await sleep(startedAt + index * intervalMs - performance.now());
    answers.push(
      client.request("kv/set", {
        namespace: options.namespace,
        key: `w${index % 100}`,
        value: { sentAt: epochNow(), pad },
      }),
    );
  }
  return (await Promise.all(answers)).map((result) => result.seq);
}
