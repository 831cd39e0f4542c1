import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  ClientErrorCode,
  ErrorCode,
  KvClient,
  connect,
  type StatusEvent,
} from "../../src/client/index.js";
import { kvErrorOf, waitForState } from "../support/client-helpers.js";
import { useClientServer } from "../support/client-server.js";
import { createKey, revokeKey } from "../support/server-process.js";
import { delay, withTimeout } from "../support/watch-helpers.js";

const fixture = useClientServer({ key: { tenant: "acme" } });
const namespace = "tenant:acme/requests";

// A test that stops the server need not continue it, because the fixture
// does after each test.
function stopProcess(): void {
  fixture.server.process.kill("SIGSTOP");
}

describe("options", () => {
  it("missing apiKey is InvalidOptions", () => {
    assert.throws(
      () => new KvClient(fixture.server.url, { apiKey: "" }),
      (error: any) =>
        error.code === ClientErrorCode.InvalidOptions &&
        /apiKey is missing/.test(error.message),
    );
  });

  it("non-integer timeout is InvalidOptions", () => {
    assert.throws(
      () =>
        new KvClient(fixture.server.url, {
          apiKey: "k",
          requestTimeoutMs: 0.5,
        }),
      (error: any) =>
        error.code === ClientErrorCode.InvalidOptions &&
        /requestTimeoutMs is invalid/.test(error.message),
    );
  });

  it("URL that is not ws or wss is InvalidOptions", () => {
    for (const url of ["notaurl", "localhost:7070/stream", "ftp://host/x"]) {
      assert.throws(
        () => new KvClient(url, { apiKey: "k" }),
        (error: any) =>
          error.code === ClientErrorCode.InvalidOptions &&
          error.message.includes(`url '${url}' is invalid`),
        url,
      );
    }
  });

  it("unreachable server is ConnectFailed", async () => {
    const error = await kvErrorOf(
      connect("ws://127.0.0.1:1/stream", { apiKey: fixture.key.key }),
    );

    assert.equal(error.code, ClientErrorCode.ConnectFailed);
    assert.equal(error.data?.url, "ws://127.0.0.1:1/stream");
    assert.match(error.message, /ECONNREFUSED/);
  });

  it("unawaited failed open is handled", async () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", record);
    try {
      const client = new KvClient("ws://127.0.0.1:1/stream", {
        apiKey: fixture.key.key,
      });
      await waitForState(
        client,
        (state) => state === "closed",
        5_000,
        "waiting for the failed open",
      );
      await delay(50);
    } finally {
      process.off("unhandledRejection", record);
    }

    assert.deepEqual(unhandled, []);
  });

  it("close before open settles opened", async () => {
    const client = new KvClient(fixture.server.url, {
      apiKey: fixture.key.key,
    });
    const closing = client.close();

    const error = await withTimeout(
      kvErrorOf(client.opened),
      2_000,
      "waiting for opened",
    );
    await closing;

    assert.equal(error.code, ClientErrorCode.Closed);
    assert.equal(client.state, "closed");
  });

  it("wrong path is ConnectFailed", async () => {
    const error = await kvErrorOf(
      connect(`${fixture.server.httpUrl}/elsewhere`.replace("http", "ws"), {
        apiKey: fixture.key.key,
      }),
    );

    assert.equal(error.code, ClientErrorCode.ConnectFailed);
    assert.match(error.message, /404/);
  });
});

describe("timeouts and close", () => {
  it("unanswered call times out", async () => {
    const client = await fixture.open({ requestTimeoutMs: 300 });
    stopProcess();

    const error = await kvErrorOf(client.get({ namespace, key: "k" }));

    assert.equal(error.code, ClientErrorCode.Timeout);
    assert.deepEqual(error.data, {
      method: "kv/get",
      timeoutMs: 300,
      sent: true,
    });
    fixture.continueServer();
  });

  it("late response after a timeout is ignored", async () => {
    const client = await fixture.open({ requestTimeoutMs: 300 });
    stopProcess();
    const error = await kvErrorOf(client.get({ namespace, key: "k" }));
    fixture.continueServer();

    await client.set({ namespace, key: "after-timeout", value: 1 });
    const entry = await client.get({ namespace, key: "after-timeout" });

    assert.equal(error.code, ClientErrorCode.Timeout);
    assert.equal(entry.value, 1);
  });

  it("timed-out write says its outcome is unknown", async () => {
    const client = await fixture.open({ requestTimeoutMs: 300 });
    stopProcess();

    const error = await kvErrorOf(
      client.set({ namespace, key: "slow", value: 1 }),
    );

    assert.equal(error.code, ClientErrorCode.Timeout);
    assert.match(error.message, /may or may not have been applied/);
  });

  it("close rejects pending calls", async () => {
    const client = await fixture.open();
    stopProcess();
    const pending = kvErrorOf(client.get({ namespace, key: "k" }));

    await client.close();
    const error = await pending;

    assert.equal(error.code, ClientErrorCode.Closed);
    assert.match(error.message, /closed before the call completed/);
    assert.equal(client.state, "closed");
  });

  it("calls after close reject with Closed", async () => {
    const client = await fixture.open();
    await client.close();

    const error = await kvErrorOf(client.get({ namespace, key: "k" }));

    assert.equal(error.code, ClientErrorCode.Closed);
  });
});

describe("drops", () => {
  it("queue over its bound rejects with QueueFull", async () => {
    const client = await fixture.open({ maxQueuedRequests: 3 });
    const events: StatusEvent[] = [];
    client.onStatus((event) => events.push(event));
    await fixture.server.kill();
    await withTimeout(
      (async () => {
        while (client.state === "open") await delay(10);
      })(),
      5_000,
      "waiting for the drop",
    );

    const queued = [
      client.set({ namespace, key: "queued", value: "sent later" }),
      client.get({ namespace, key: "queued" }),
      client.get({ namespace, key: "queued" }),
    ];
    const overflow = await kvErrorOf(client.get({ namespace, key: "queued" }));
    await fixture.restartOnSamePort();
    const [written, first, second] = await withTimeout(
      Promise.all(queued),
      15_000,
      "queued calls after the restart",
    );

    assert.equal(overflow.code, ClientErrorCode.QueueFull);
    assert.deepEqual(overflow.data, { limit: 3 });
    assert.equal((written as { version: number }).version >= 1, true);
    assert.equal((first as { value: unknown }).value, "sent later");
    assert.equal((second as { value: unknown }).value, "sent later");
    assert.ok(events.some((event) => event.state === "reconnecting"));
    assert.equal(events.at(-1)?.state, "open");
  });

  it("close while reconnecting ends watches", async () => {
    const client = await fixture.open();
    const watch = client.watch(namespace);
    await fixture.server.kill();
    await withTimeout(
      (async () => {
        while (client.state === "open") await delay(10);
      })(),
      5_000,
      "waiting for the drop",
    );
    const queued = kvErrorOf(client.get({ namespace, key: "k" }));

    await withTimeout(client.close(), 2_000, "close while reconnecting");
    await fixture.restartOnSamePort();

    assert.equal((await queued).code, ClientErrorCode.Closed);
    assert.deepEqual(await watch.next(), { value: undefined, done: true });
    assert.equal(client.state, "closed");
  });

  it("unanswered write fails, unanswered read is resent", async () => {
    const client = await fixture.open();
    await client.set({ namespace, key: "resent", value: "v1" });
    stopProcess();

    const write = kvErrorOf(
      client.set({ namespace, key: "unknown", value: 1 }),
    );
    const read = client.get({ namespace, key: "resent" });
    await delay(100);
    await fixture.server.kill();
    await fixture.restartOnSamePort();

    const writeError = await withTimeout(write, 15_000, "the write");
    const entry = await withTimeout(read, 15_000, "the read");
    assert.equal(writeError.code, ClientErrorCode.OutcomeUnknown);
    assert.equal(writeError.data?.method, "kv/set");
    assert.match(writeError.message, /may or may not have been applied/);
    assert.equal(entry.value, "v1");
  });

  it("throwing status listener keeps reconnecting", async () => {
    const client = await fixture.open();
    client.onStatus((event) => {
      if (event.state === "reconnecting") throw new Error("listener failed");
    });
    // The client rethrows a listener's exception as uncaught. The test
    // runner's own handler would count that as a failure, so it is set
    // aside while the drop runs.
    const runnerHandlers = process.listeners("uncaughtException");
    const uncaught: unknown[] = [];
    const record = (error: unknown) => uncaught.push(error);
    process.removeAllListeners("uncaughtException");
    process.on("uncaughtException", record);
    try {
      await fixture.server.kill();
      await fixture.restartOnSamePort();
      await waitForState(
        client,
        (state) => state === "open",
        15_000,
        "waiting for the reconnect",
      );
    } finally {
      process.off("uncaughtException", record);
      for (const handler of runnerHandlers) {
        process.on("uncaughtException", handler);
      }
    }
    const entry = await kvErrorOf(client.get({ namespace, key: "absent" }));

    assert.equal(client.state, "open");
    assert.equal(entry.code, ErrorCode.NotFound);
    assert.ok(uncaught.length >= 1);
    assert.equal((uncaught[0] as Error).message, "listener failed");
  });

  it("oversized frame fails only its call", async () => {
    const client = await fixture.open();
    await client.set({ namespace, key: "beside-oversized", value: "v1" });
    // 20 values of 60,000 bytes make a frame over the default 1 MiB.
    const operations = Array.from({ length: 20 }, (_, index) => ({
      op: "set" as const,
      namespace,
      key: `oversized-${index}`,
      value: "x".repeat(60_000),
    }));

    const oversized = kvErrorOf(client.batch({ operations }));
    const read = client.get({ namespace, key: "beside-oversized" });
    const write = kvErrorOf(
      client.set({ namespace, key: "after-oversized", value: 1 }),
    );
    const batchError = await withTimeout(oversized, 10_000, "the batch");
    const entry = await withTimeout(read, 10_000, "the read");
    const writeError = await withTimeout(write, 10_000, "the write");
    const unwritten = await kvErrorOf(
      client.get({ namespace, key: "oversized-0" }),
    );

    assert.equal(batchError.code, ClientErrorCode.MessageTooLarge);
    assert.equal(batchError.data?.method, "kv/batch");
    assert.equal(entry.value, "v1");
    assert.equal(writeError.code, ClientErrorCode.OutcomeUnknown);
    assert.equal(unwritten.code, ErrorCode.NotFound);
  });

  it("revoked key stops the client with Unauthorized", async () => {
    const revocable = await createKey(fixture.store.store, { tenant: "acme" });
    const client = await fixture.open({ apiKey: revocable.key });
    const events: StatusEvent[] = [];
    client.onStatus((event) => events.push(event));

    await revokeKey(fixture.store.store, revocable.id);
    await withTimeout(
      (async () => {
        while (client.state !== "closed") await delay(20);
      })(),
      5_000,
      "waiting for the 4401 close",
    );
    const error = await kvErrorOf(client.get({ namespace, key: "k" }));
    await delay(500);

    assert.equal(error.code, ErrorCode.Unauthorized);
    assert.equal(error.data?.closeCode, 4401);
    assert.match(error.message, /missing, invalid or revoked/);
    assert.equal(
      events.filter((event) => event.state === "connecting").length,
      0,
      "no reconnect attempt",
    );
    assert.equal(events.at(-1)?.state, "closed");
  });
});
