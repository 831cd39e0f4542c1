import type {
  Change,
  ConnectionState,
  KvClient,
  Watch,
} from "../../src/client/index.js";
import { KvError } from "../../src/client/index.js";
import { delay, withTimeout } from "./watch-helpers.js";

/** Takes the next `count` changes of a watch, or rejects after `timeoutMs`. */
export async function takeChanges(
  watch: Watch,
  count: number,
  timeoutMs = 10_000,
): Promise<Change[]> {
  const changes: Change[] = [];
  const reading = (async () => {
    while (changes.length < count) {
      const next = await watch.next();
      if (next.done) break;
      changes.push(next.value);
    }
    return changes;
  })();
  return withTimeout(reading, timeoutMs, `waiting for ${count} changes`);
}

/**
 * Returns the KvError that `promise` rejects with; fails if it resolves or
 * rejects with anything else.
 */
export async function kvErrorOf(promise: Promise<unknown>): Promise<KvError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof KvError) return error;
    throw new Error(`expected a KvError, got ${String(error)}`);
  }
  throw new Error("expected a KvError, but the call succeeded");
}

/**
 * Polls the client's state every 10 ms until `condition` holds, or
 * rejects after `timeoutMs` with `description` in the message.
 */
export async function waitForState(
  client: KvClient,
  condition: (state: ConnectionState) => boolean,
  timeoutMs: number,
  description: string,
): Promise<void> {
  const polling = (async () => {
    while (!condition(client.state)) await delay(10);
  })();
  await withTimeout(polling, timeoutMs, description);
}
