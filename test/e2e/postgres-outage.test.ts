import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  createTestSchema,
  holdLock,
  skipWithoutPostgres,
  terminateSessions,
  type TestSchema,
} from "../support/postgres-admin.js";
import { TestClient, type Message } from "../support/rpc-client.js";
import {
  createKey,
  startServer,
  type CreatedKey,
  type ServerProcess,
} from "../support/server-process.js";
import { startTcpProxy } from "../support/tcp-proxy.js";
import { delay, range } from "../support/watch-helpers.js";

const storeUnavailable = -32001;
const writesPerWriter = 120;

/** Connects, retrying while a server restarts; at most 300 tries, 30 s. */
async function connectRetrying(
  url: () => string,
  apiKey: string,
): Promise<TestClient> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 300; attempt++) {
    try {
      return await TestClient.connect(url(), { apiKey });
    } catch (error) {
      lastError = error;
      await delay(100);
    }
  }
  throw lastError;
}

/** Sends a request; resolves with null if the connection closes first. */
function requestUnlessClosed(
  client: TestClient,
  method: string,
  params: unknown,
): Promise<Message | null> {
  return Promise.race([
    client.request(method, params),
    client.closed.then(() => null),
  ]);
}

async function httpStatus(server: ServerProcess, path: string) {
  const response = await fetch(`${server.httpUrl}${path}`);
  await response.arrayBuffer();
  return response.status;
}

/** Polls `check` every 100 ms until it returns true; at most `tries` times. */
async function eventually(check: () => Promise<boolean>, tries = 100) {
  for (let attempt = 0; attempt < tries; attempt++) {
    if (await check()) return true;
    await delay(100);
  }
  return false;
}

/**
 * A watcher of tenant:acme that reconnects after every close and resumes
 * with fromSeq set to the last seq it received, as the protocol requires
 * of clients.
 */
class ResumingWatcher {
  private readonly earlier: Message[] = [];
  private client: TestClient | undefined;
  private stopped = false;
  private storeId: string | undefined;
  private failure: unknown;
  private readonly done: Promise<void>;

  constructor(url: () => string, apiKey: string) {
    this.done = this.run(url, apiKey).catch((error: unknown) => {
      this.failure = error;
    });
  }

  get changes(): Message[] {
    return [...this.earlier, ...(this.client?.changes ?? [])];
  }

  private async run(url: () => string, apiKey: string) {
    for (let connection = 0; connection < 50 && !this.stopped; connection++) {
      const client = await connectRetrying(url, apiKey);
      this.client = client;
      const seen = this.earlier;
      const params: Record<string, unknown> = {
        namespace: "tenant:acme",
        fromSeq: seen.length > 0 ? seen[seen.length - 1].seq : 0,
      };
      if (this.storeId !== undefined) params.storeId = this.storeId;
      const response = await requestUnlessClosed(
        client,
        "watch/subscribe",
        params,
      );
      if (response?.error) {
        await client.close();
        await delay(100);
      } else if (response !== null) {
        this.storeId = response.result.storeId;
        await client.closed;
      }
      this.earlier.push(...client.changes);
      this.client = undefined;
    }
  }

  /** Stops reconnecting; rejects if the watcher had failed. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.close();
    await this.done;
    if (this.failure) throw this.failure;
  }
}

describe("PostgreSQL outages", { skip: skipWithoutPostgres }, () => {
  let schema: TestSchema;
  let service: CreatedKey;
  const servers = new Set<ServerProcess>();
  const clients: TestClient[] = [];

  before(async () => {
    schema = createTestSchema("outage");
    service = await createKey(schema.store, { tenant: "acme" });
  });

  after(async () => {
    for (const client of clients) await client.close();
    for (const server of servers) await server.stop();
    await schema?.drop();
  });

  async function start(store: string): Promise<ServerProcess> {
    const server = await startServer({ store });
    servers.add(server);
    return server;
  }

  async function stop(server: ServerProcess): Promise<void> {
    await server.stop();
    servers.delete(server);
  }

  test("cut link fails -32001, then recovers", async () => {
    const target = new URL(schema.url);
    const proxy = await startTcpProxy(Number(target.port || 5432));
    const proxied = new URL(schema.store);
    proxied.port = String(proxy.port);
    const server = await start(proxied.toString());
    const client = await TestClient.connect(server.url, {
      apiKey: service.key,
    });
    clients.push(client);
    const set = (value: number) =>
      client.request("kv/set", {
        namespace: "tenant:acme/cut",
        key: "k",
        value,
      });
    assert.ok((await set(1)).result);
    assert.equal(await httpStatus(server, "/readyz"), 200);

    await proxy.close();
    try {
      assert.equal((await set(2)).error?.code, storeUnavailable);
      const read = await client.request("kv/get", {
        namespace: "tenant:acme/cut",
        key: "k",
      });
      assert.equal(read.error?.code, storeUnavailable);
      assert.equal(await httpStatus(server, "/readyz"), 503);
      assert.equal(await httpStatus(server, "/healthz"), 200);
    } finally {
      await proxy.reopen();
    }

    assert.ok(
      await eventually(async () => (await set(3)).result !== undefined),
      "writes work again once the database is back",
    );
    assert.ok(
      await eventually(
        async () => (await httpStatus(server, "/readyz")) === 200,
      ),
      "/readyz answers 200 again",
    );
    assert.equal(server.process.exitCode, null, "the server kept running");
    await stop(server);
    await proxy.close();
  });

  test("silent database fails reads -32001", async () => {
    // The proxy keeps the sessions open but stops passing PostgreSQL's
    // replies on, as a dropped network path does: no error ever arrives.
    const target = new URL(schema.url);
    const proxy = await startTcpProxy(Number(target.port || 5432));
    const proxied = new URL(schema.store);
    proxied.port = String(proxy.port);
    const server = await start(proxied.toString());
    const client = await TestClient.connect(server.url, {
      apiKey: service.key,
    });
    clients.push(client);
    const entry = { namespace: "tenant:acme/silent", key: "k" };
    assert.ok((await client.request("kv/set", { ...entry, value: 1 })).result);
    assert.ok((await client.request("kv/get", entry)).result);

    proxy.silence();
    try {
      const read = await client.request("kv/get", entry);

      assert.equal(read.error?.code, storeUnavailable);
      assert.match(read.error?.data?.reason ?? "", /no reply/);
      assert.equal(await httpStatus(server, "/healthz"), 200);
    } finally {
      await stop(server);
      await proxy.close();
    }
  });

  test("locked tenant row: -32001, not applied", async () => {
    const server = await start(schema.store);
    const client = await TestClient.connect(server.url, {
      apiKey: service.key,
    });
    clients.push(client);
    const target = { namespace: "tenant:acme/rowlock", key: "k" };
    const first = await client.call("kv/set", { ...target, value: 1 });
    assert.equal(first.version, 1);

    // An admin session locks the tenant's row for about 2 s, longer than the
    // write deadline of 1 s.
    const lock = await holdLock(
      `SELECT 1 FROM "${schema.name}".tenants WHERE tenant_id = 'acme' FOR UPDATE`,
    );
    try {
      const response = await client.request("kv/set", {
        ...target,
        value: 2,
        cas: 1,
      });
      assert.equal(response.error?.code, storeUnavailable);
      await delay(1000);
    } finally {
      await lock.release();
    }

    // Gives a transaction still waiting on the lock time to commit, so a
    // late commit shows in the read below.
    await delay(300);
    const read = await client.call("kv/get", target);
    assert.equal(read.value, 1, "the timed-out write is absent");
    assert.equal(read.version, 1);
    const retried = await client.request("kv/set", {
      ...target,
      value: 2,
      cas: 1,
    });
    assert.equal(retried.error, undefined, "a retry with the same cas works");
    assert.equal(retried.result?.version, 2);
    await stop(server);
  });

  test("load survives terminations and a restart", async (t) => {
    const first = await start(schema.store);
    let second = await start(schema.store);
    const urls = [() => first.url, () => second.url];
    const watchers = urls.map((url) => new ResumingWatcher(url, service.key));
    await delay(200);

    const acknowledged: Message[] = [];
    let failures = 0;
    // Settled wrappers, so that a failed disruption is reported by the
    // assert below and not as an unhandled rejection during the load.
    const disruptions: Array<Promise<PromiseSettledResult<unknown>>> = [];
    const settle = (promise: Promise<unknown>) =>
      Promise.allSettled([promise]).then(([outcome]) => outcome);
    const onAcknowledged = () => {
      if (acknowledged.length === 60) {
        disruptions.push(settle(terminateSessions(schema.applicationName)));
      }
      if (acknowledged.length === 150) {
        disruptions.push(
          settle(
            (async () => {
              await stop(second);
              second = await start(schema.store);
            })(),
          ),
        );
      }
    };

    await Promise.all(
      urls.map(async (url, writer) => {
        let client = await connectRetrying(url, service.key);
        let written = 0;
        for (let attempt = 0; attempt < 2000; attempt++) {
          if (written === writesPerWriter) break;
          const value = { writer, written };
          const response = await requestUnlessClosed(client, "kv/set", {
            namespace: `tenant:acme/w${writer}`,
            key: `k${written % 5}`,
            value,
          });
          if (response === null) {
            client = await connectRetrying(url, service.key);
            continue;
          }
          if (response.error) {
            assert.equal(response.error.code, storeUnavailable);
            failures++;
            await delay(20);
            continue;
          }
          acknowledged.push({ ...response.result, value });
          written++;
          onAcknowledged();
        }
        clients.push(client);
        assert.equal(written, writesPerWriter, `writer ${writer} finished`);
      }),
    );
    assert.equal(disruptions.length, 2, "both disruptions happened");
    for (const outcome of await Promise.all(disruptions)) {
      const reason = (outcome as PromiseRejectedResult).reason;
      assert.equal(outcome.status, "fulfilled", `disruption failed: ${reason}`);
    }

    // A server's subscribe result is the last seq it delivered, which may
    // lag the other server's commits for a moment. Both servers must reach
    // the highest acknowledged seq and agree, so that writes that committed
    // without an acknowledgement are counted too.
    const highestAcknowledged = Math.max(
      ...acknowledged.map((write) => write.seq),
    );
    let latestSeq = 0;
    const settled = await eventually(async () => {
      const seqs: number[] = [];
      for (const server of [first, second]) {
        const reader = await connectRetrying(() => server.url, service.key);
        const result = await reader.call("watch/subscribe", {
          namespace: "tenant:acme",
        });
        await reader.close();
        seqs.push(result.seq);
      }
      latestSeq = seqs[0];
      return seqs[0] === seqs[1] && seqs[0] >= highestAcknowledged;
    });
    assert.ok(settled, "both servers reach the same latest seq");

    try {
      for (const [index, watcher] of watchers.entries()) {
        const caughtUp = await eventually(
          async () => watcher.changes.length >= latestSeq,
          200,
        );
        assert.ok(caughtUp, `watcher ${index} caught up`);
        await watcher.stop();
        const changes = watcher.changes;
        assert.deepEqual(
          changes.map((change) => change.seq),
          range(1, latestSeq),
          `watcher ${index} has every change once, in order`,
        );
        for (const write of acknowledged) {
          assert.deepEqual(
            changes[write.seq - 1].value,
            write.value,
            `acknowledged seq ${write.seq} is in the history`,
          );
        }
      }
    } finally {
      await Promise.allSettled(watchers.map((watcher) => watcher.stop()));
    }
    t.diagnostic(`writes failed with -32001 and retried: ${failures}`);
  });
});
