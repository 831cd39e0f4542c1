import type { ChildProcess } from "node:child_process";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  type Change,
  type KvClient,
  type StatusEvent,
} from "../../src/client/index.js";
import { TestClient, type Message } from "../support/rpc-client.js";
import { useClientServer } from "../support/client-server.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";
import {
  delay,
  range,
  setPipelined,
  withTimeout,
} from "../support/watch-helpers.js";

/** Reads the store's retained history of `namespace` up to its latest seq. */
async function readHistory(
  url: string,
  apiKey: string,
  namespace: string,
): Promise<Message[]> {
  const reader = await TestClient.connect(url, { apiKey });
  try {
    const { seq } = await reader.call("watch/subscribe", {
      namespace,
      fromSeq: 0,
    });
    await reader.waitFor(
      () => reader.changes.some((change) => change.seq >= seq),
      30_000,
    );
    return reader.changes.filter((change) => change.seq <= seq);
  } finally {
    await reader.close();
  }
}

/** Collects every change of a watch until `stop` resolves true. */
function collect(client: KvClient, namespace: string, resumes: number[]) {
  const changes: Change[] = [];
  const watch = client.watch(namespace, {
    onResume: ({ fromSeq }) => resumes.push(fromSeq),
  });
  const reading = (async () => {
    for await (const change of watch) changes.push(change);
  })();
  return { changes, watch, reading };
}

async function waitUntil(
  condition: () => boolean,
  timeoutMs: number,
  description: string,
): Promise<void> {
  await withTimeout(
    (async () => {
      while (!condition()) await delay(20);
    })(),
    timeoutMs,
    description,
  );
}

describe("watch across server restarts", { timeout: 120_000 }, () => {
  const namespace = "tenant:acme/restarts";
  const totalWrites = 400;
  const fixture = useClientServer({ key: { tenant: "acme" } });
  let watcher: KvClient;
  let writer: KvClient;
  let watched: Change[];
  let history: Message[];
  const resumes: number[] = [];
  const statuses: StatusEvent[] = [];
  let acknowledged = 0;
  let failedWrites = 0;

  async function killAndRestart(): Promise<void> {
    await fixture.server.kill();
    await fixture.restartOnSamePort();
  }

  before(async () => {
    watcher = await fixture.openShared();
    writer = await fixture.openShared();
    watcher.onStatus((event) => statuses.push(event));
    const collected = collect(watcher, namespace, resumes);
    watched = collected.changes;
    await watcher.get({ namespace, key: "sync" }).catch(() => undefined);

    const writing = (async () => {
      for (let n = 1; n <= totalWrites; n++) {
        try {
          await writer.set({ namespace, key: `k${n % 10}`, value: n });
          acknowledged++;
        } catch {
          // A write cut by the kill has an unknown outcome; the history
          // read below is what counts.
          failedWrites++;
          await delay(20);
        }
      }
    })();
    await waitUntil(() => acknowledged >= 100, 30_000, "first writes");
    await killAndRestart();
    await waitUntil(() => acknowledged >= 250, 30_000, "writes after one kill");
    await killAndRestart();
    await withTimeout(writing, 60_000, "the writer");

    history = await readHistory(fixture.server.url, fixture.key.key, namespace);
    const latest = history.at(-1)!.seq;
    await waitUntil(
      () => watched.at(-1)?.seq === latest,
      30_000,
      "the watch to catch up",
    );
    await watcher.close();
    await collected.reading;
  });

  it("watch matches the full history", () => {
    assert.ok(history.length >= acknowledged, "every acknowledged write");
    assert.deepEqual(
      watched.map((change) => change.seq),
      history.map((change) => change.seq),
    );
    assert.deepEqual(watched, history);
  });

  it("history is gapless and the writer went on", () => {
    assert.deepEqual(
      history.map((change) => change.seq),
      range(1, history.length),
    );
    assert.ok(acknowledged + failedWrites === totalWrites);
  });

  it("watch resumed after each kill", () => {
    assert.equal(resumes.length, 2);
    const reconnects = statuses.filter(
      (event) => event.state === "reconnecting",
    );
    assert.ok(reconnects.length >= 2);
  });
});

describe("watch cut as a slow consumer", { timeout: 120_000 }, () => {
  const root = "tenant:slow";
  const rounds = 16;
  const writesPerRound = 25;
  const total = rounds * writesPerRound;
  // 400 changes of about 60 KB, about 24 MB in all: far more than the
  // 256 KiB outbound limit plus what the kernel's socket buffers absorb.
  const filler = "x".repeat(60_000);
  const fixture = useClientServer({
    key: { tenant: "slow" },
    args: ["--max-outbound-bytes", "262144"],
  });
  let proxy: TcpProxy;
  let client: KvClient;
  let writer: TestClient;
  let watched: Change[];
  const resumes: number[] = [];
  const statuses: StatusEvent[] = [];

  async function slowConsumerCloses(): Promise<number> {
    const response = await fetch(`${fixture.server.httpUrl}/metrics`);
    const text = await response.text();
    const match = /^kvstream_slow_consumer_closes_total (\d+)/m.exec(text);
    return match ? Number(match[1]) : 0;
  }

  before(async () => {
    proxy = await startTcpProxy(fixture.server.port);
    client = await fixture.openShared({ url: proxy.url });
    client.onStatus((event) => statuses.push(event));
    writer = await TestClient.connect(fixture.server.url, {
      apiKey: fixture.key.key,
    });
    const collected = collect(client, root, resumes);
    watched = collected.changes;
    await client.get({ namespace: root, key: "sync" }).catch(() => undefined);

    proxy.pause();
    for (let round = 0; round < rounds; round++) {
      await setPipelined(
        writer,
        range(1, writesPerRound).map((n) => ({
          namespace: root,
          key: `k${n}`,
          value: `${round}:${n}:${filler}`,
        })),
      );
    }
    let closes = 0;
    await withTimeout(
      (async () => {
        while ((closes = await slowConsumerCloses()) === 0) await delay(50);
      })(),
      20_000,
      "the 4008 close",
    );
    assert.equal(closes, 1);
    proxy.resume();
    await waitUntil(
      () => watched.length >= total,
      60_000,
      "the watch to catch up",
    );
  });

  after(async () => {
    await writer?.close();
    await proxy?.close();
  });

  it("resumed watch loses nothing", () => {
    assert.deepEqual(
      watched.map((change) => change.seq),
      range(1, total),
    );
    assert.ok(
      watched.every((change, index) => {
        const round = Math.floor(index / writesPerRound);
        const n = (index % writesPerRound) + 1;
        return change.value === `${round}:${n}:${filler}`;
      }),
      "values match the writes",
    );
  });

  it("client reconnected after the cut", () => {
    const drop = statuses.find((event) => event.state === "reconnecting");
    assert.ok(drop !== undefined, "a reconnect was scheduled");
    assert.ok(
      drop.closeCode === 4008 || drop.closeCode === 1006,
      `close code ${drop.closeCode}`,
    );
    assert.equal(resumes.length, 1);
    assert.ok(resumes[0] < total, "it resumed before the last change");
  });
});

describe("watch resubscribe answered late", { timeout: 60_000 }, () => {
  const namespace = "tenant:late/w";
  const fixture = useClientServer({ key: { tenant: "late" } });

  it("late resubscribe keeps the watch", async () => {
    const client = await fixture.open({ requestTimeoutMs: 500 });
    const resumes: number[] = [];
    const { changes, reading } = collect(client, namespace, resumes);
    let failure: unknown;
    reading.catch((error: unknown) => (failure = error));
    const first = await client.set({ namespace, key: "k", value: 1 });
    await waitUntil(() => changes.length === 1, 5_000, "the first change");

    // Freeze the new server as the client opens, before its resubscribe
    // goes out, for three times the request timeout. The client may open
    // before the fixture has read the new server's ready line, so the
    // process is taken when it is spawned.
    let newServer: ChildProcess | undefined;
    let freezeOnOpen = false;
    let thawed = false;
    client.onStatus((event) => {
      if (event.state !== "open" || !freezeOnOpen) return;
      freezeOnOpen = false;
      const server = newServer!;
      server.kill("SIGSTOP");
      setTimeout(() => {
        server.kill("SIGCONT");
        thawed = true;
      }, 1_500);
    });
    await fixture.server.kill();
    freezeOnOpen = true;
    await fixture.restartOnSamePort((child) => (newServer = child));
    await waitUntil(
      () => resumes.length > 0 || failure !== undefined,
      20_000,
      "the resubscribe",
    );
    await waitUntil(() => thawed, 5_000, "the server to continue");
    const second = await client.set({ namespace, key: "k", value: 2 });
    await waitUntil(
      () => changes.length === 2 || failure !== undefined,
      5_000,
      "the second change",
    );

    assert.equal(failure, undefined);
    assert.deepEqual(resumes, [first.seq]);
    assert.deepEqual(
      changes.map((change) => change.seq),
      [first.seq, second.seq],
    );
  });
});
