import type { TestClient } from "./rpc-client.js";

/** A subscription of one connection, as a client tracks it for routing. */
export interface RoutedSubscription {
  namespace: string;
  /** The id of the watch/subscribe request that started it. */
  requestId: number;
  fromSeq?: number;
}

/** A committed change, by its namespace and seq. */
export interface CommittedChange {
  namespace: string;
  seq: number;
}

/** Builds the watch/subscribe request of `subscription`. */
export function subscribeRequest(subscription: RoutedSubscription): object {
  const params: Record<string, unknown> = {
    namespace: subscription.namespace,
  };
  if (subscription.fromSeq !== undefined) {
    params.fromSeq = subscription.fromSeq;
  }
  return {
    jsonrpc: "2.0",
    id: subscription.requestId,
    method: "watch/subscribe",
    params,
  };
}

/**
 * Routes the watch/change notifications among `frames`, the frames of one
 * connection in arrival order, by the protocol's client rule. A
 * subscription takes a notification only when it arrives after the
 * subscription's successful response, matches its namespace, and carries
 * a seq above the last one the subscription took. That last seq starts at
 * `fromSeq`, or at the response's seq without one. Returns the seqs that
 * each subscription took, by namespace.
 */
export function routeNotifications(
  frames: readonly unknown[],
  subscriptions: readonly RoutedSubscription[],
): Map<string, number[]> {
  const delivered = new Map(
    subscriptions.map((sub) => [sub.namespace, [] as number[]]),
  );
  const lastSeqs = new Map<string, number>();

  const onResponse = (response: any) => {
    const subscription = subscriptions.find(
      (sub) => sub.requestId === response.id,
    );
    if (subscription === undefined || response.result === undefined) return;
    lastSeqs.set(
      subscription.namespace,
      subscription.fromSeq ?? response.result.seq,
    );
  };

  const onChange = (change: any) => {
    for (const { namespace } of subscriptions) {
      const lastSeq = lastSeqs.get(namespace);
      if (lastSeq === undefined || change.seq <= lastSeq) continue;
      if (!covers(namespace, change.namespace)) continue;
      delivered.get(namespace)!.push(change.seq);
      lastSeqs.set(namespace, change.seq);
    }
  };

  for (const frame of frames as any[]) {
    if (Array.isArray(frame)) {
      frame.forEach(onResponse);
    } else if (frame.method === "watch/change") {
      onChange(frame.params);
    } else if (frame.method === undefined) {
      onResponse(frame);
    }
  }
  return delivered;
}

/**
 * Returns the seqs that each subscription must take from `changes`, in
 * order: those at or below its namespace with a seq above its `fromSeq`.
 * A subscription without one starts after the seq of its response, which
 * `responses` must contain.
 */
export function expectedSeqs(
  changes: readonly CommittedChange[],
  subscriptions: readonly RoutedSubscription[],
  responses: readonly any[] = [],
): Map<string, number[]> {
  const expected = new Map<string, number[]>();
  for (const { namespace, requestId, fromSeq } of subscriptions) {
    const afterSeq =
      fromSeq ??
      responses.find((response) => response.id === requestId).result.seq;
    const seqs = changes
      .filter(
        (change) =>
          change.seq > afterSeq && covers(namespace, change.namespace),
      )
      .map((change) => change.seq)
      .sort((a, b) => a - b);
    expected.set(namespace, seqs);
  }
  return expected;
}

/**
 * Waits until each subscription, routed by the client rule, has taken the
 * last seq of its expected list, and returns what each one took. After
 * 20 s it returns what arrived so far, so that the caller's comparison
 * shows what is missing.
 */
export async function routeOnceComplete(
  client: TestClient,
  subscriptions: readonly RoutedSubscription[],
  expected: Map<string, number[]>,
): Promise<Map<string, number[]>> {
  const complete = () => {
    const routed = routeNotifications(client.received, subscriptions);
    return subscriptions.every(({ namespace }) => {
      const last = expected.get(namespace)!.at(-1);
      return last === undefined || routed.get(namespace)!.includes(last);
    });
  };
  await client.waitFor(complete, 20_000).catch(() => undefined);
  return routeNotifications(client.received, subscriptions);
}

/** Returns whether `namespace` is `watched` or lies below it. */
function covers(watched: string, namespace: string): boolean {
  return namespace === watched || namespace.startsWith(`${watched}/`);
}
