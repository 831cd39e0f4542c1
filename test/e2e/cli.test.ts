import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import {
  createTempStore,
  keyIdOf,
  runCli,
  startServer,
  type ServerProcess,
  type TempStore,
} from "../support/server-process.js";
import { ClientPool, withTimeout } from "../support/watch-helpers.js";

const keyPattern = /^kvs_[a-z0-9]+_[A-Za-z0-9_-]+$/;

let store: TempStore;
let server: ServerProcess;
const pool = new ClientPool();

interface KeyEntry {
  id: string;
  tenant: string;
  role: string;
  scope: string | null;
  name: string | null;
  createdAt: number | string;
  revokedAt: number | string | null;
}

async function listKeys(storeArgument: string): Promise<KeyEntry[]> {
  const result = await runCli([
    "keys",
    "list",
    "--store",
    storeArgument,
    "--json",
  ]);
  assert.equal(result.code, 0, `keys list failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

async function createWithCli(args: string[]): Promise<string> {
  const result = await runCli([
    "keys",
    "create",
    "--store",
    store.store,
    ...args,
  ]);
  assert.equal(result.code, 0, `keys create failed: ${result.stderr}`);
  return result.stdout.trim();
}

function secretOf(key: string): string {
  return key.slice(`kvs_${keyIdOf(key)}_`.length);
}

/**
 * Converts a CLI timestamp, milliseconds or ISO 8601 text, to milliseconds
 * since the epoch.
 */
function timeOf(timestamp: number | string): number {
  return typeof timestamp === "number" ? timestamp : Date.parse(timestamp);
}

// The CLI changes keys while a server runs on the same store, which
// is how operators use it.
before(async () => {
  store = await createTempStore();
  server = await startServer({ store: store.store });
});

afterEach(() => pool.closeAll());

after(async () => {
  await server?.stop();
  await store?.remove();
});

describe("keys create", () => {
  it("prints only the key", async () => {
    const result = await runCli([
      "keys",
      "create",
      "--store",
      store.store,
      "--tenant",
      "cli-create",
      "--role",
      "service",
    ]);
    const key = result.stdout.trim();

    assert.equal(result.code, 0);
    assert.match(result.stdout, /^kvs_[a-z0-9]+_[A-Za-z0-9_-]+\n?$/);
    const client = await pool.connect(server.url, { apiKey: key });
    const written = await client.call("kv/set", {
      namespace: "tenant:cli-create",
      key: "k",
      value: 1,
    });
    assert.equal(written.updatedBy, keyIdOf(key));
  });

  it("prints only the key with options", async () => {
    const result = await runCli([
      "keys",
      "create",
      "--store",
      store.store,
      "--tenant",
      "cli-create",
      "--role",
      "agent",
      "--scope",
      "tenant:cli-create/team:a",
      "--name",
      "nightly report",
    ]);

    assert.equal(result.code, 0);
    assert.match(result.stdout, /^kvs_[a-z0-9]+_[A-Za-z0-9_-]+\n?$/);
  });
});

describe("keys list", () => {
  it("json shows metadata without secrets", async () => {
    const start = Date.now();
    const scoped = await createWithCli([
      "--tenant",
      "cli-list",
      "--role",
      "agent",
      "--scope",
      "tenant:cli-list/user:u1",
      "--name",
      "support bot",
    ]);
    const plain = await createWithCli([
      "--tenant",
      "cli-list",
      "--role",
      "service",
    ]);
    const end = Date.now();

    const result = await runCli([
      "keys",
      "list",
      "--store",
      store.store,
      "--json",
    ]);
    const entries: KeyEntry[] = JSON.parse(result.stdout);
    const entry = entries.find((candidate) => candidate.id === keyIdOf(scoped));
    const plainEntry = entries.find(
      (candidate) => candidate.id === keyIdOf(plain),
    );

    assert.equal(result.code, 0);
    assert.ok(entry !== undefined, "the scoped key is listed");
    assert.ok(plainEntry !== undefined, "the unscoped key is listed");
    assert.deepEqual(Object.keys(entry).sort(), [
      "createdAt",
      "id",
      "name",
      "revokedAt",
      "role",
      "scope",
      "tenant",
    ]);
    assert.equal(entry.tenant, "cli-list");
    assert.equal(entry.role, "agent");
    assert.equal(entry.scope, "tenant:cli-list/user:u1");
    assert.equal(entry.name, "support bot");
    assert.equal(entry.revokedAt, null);
    assert.ok(
      timeOf(entry.createdAt) >= start - 1_000,
      "createdAt is not too early",
    );
    assert.ok(
      timeOf(entry.createdAt) <= end + 1_000,
      "createdAt is not too late",
    );
    assert.deepEqual(Object.keys(plainEntry).sort(), Object.keys(entry).sort());
    assert.equal(plainEntry.role, "service");
    for (const key of [scoped, plain]) {
      assert.equal(
        result.stdout.includes(secretOf(key)),
        false,
        "no secret on stdout",
      );
      assert.equal(
        result.stderr.includes(secretOf(key)),
        false,
        "no secret on stderr",
      );
    }
  });

  it("plain output hides secrets", async () => {
    const key = await createWithCli([
      "--tenant",
      "cli-list-plain",
      "--role",
      "service",
    ]);

    const result = await runCli(["keys", "list", "--store", store.store]);

    assert.equal(result.code, 0);
    assert.ok(result.stdout.includes(keyIdOf(key)), "the key id is listed");
    assert.equal(result.stdout.includes(secretOf(key)), false);
    assert.equal(result.stderr.includes(secretOf(key)), false);
  });
});

describe("keys revoke", () => {
  it("marks the key revoked", async () => {
    const revoked = await createWithCli([
      "--tenant",
      "cli-revoke",
      "--role",
      "service",
    ]);
    const kept = await createWithCli([
      "--tenant",
      "cli-revoke",
      "--role",
      "service",
    ]);

    const result = await runCli([
      "keys",
      "revoke",
      keyIdOf(revoked),
      "--store",
      store.store,
    ]);
    const entries = await listKeys(store.store);
    const revokedEntry = entries.find((entry) => entry.id === keyIdOf(revoked));
    const keptEntry = entries.find((entry) => entry.id === keyIdOf(kept));

    assert.equal(result.code, 0, result.stderr);
    assert.notEqual(revokedEntry?.revokedAt ?? null, null);
    assert.ok(
      Number.isFinite(timeOf(revokedEntry!.revokedAt!)),
      "revokedAt is a time",
    );
    assert.equal(keptEntry?.revokedAt, null, "other keys stay valid");
  });
});

describe("keys invalid input", () => {
  const createArgs = (...args: string[]) => [
    "keys",
    "create",
    "--store",
    "",
    ...args,
  ];
  const cases: Array<{ name: string; args: string[] }> = [
    {
      name: "create rejects unknown role",
      args: createArgs("--tenant", "cli-bad", "--role", "admin"),
    },
    {
      name: "create rejects tenant with space",
      args: createArgs("--tenant", "bad tenant", "--role", "service"),
    },
    {
      name: "create rejects tenant with slash",
      args: createArgs("--tenant", "bad/tenant", "--role", "service"),
    },
    {
      name: "create rejects tenant starting with dot",
      args: createArgs("--tenant", ".hidden", "--role", "service"),
    },
    {
      name: "create rejects 65-character tenant",
      args: createArgs("--tenant", "a".repeat(65), "--role", "service"),
    },
    {
      name: "create rejects empty tenant",
      args: createArgs("--tenant", "", "--role", "service"),
    },
    {
      name: "create rejects missing tenant",
      args: createArgs("--role", "service"),
    },
    {
      name: "create rejects scope of another tenant",
      args: createArgs(
        "--tenant",
        "acme",
        "--role",
        "service",
        "--scope",
        "tenant:other/x",
      ),
    },
    {
      name: "create rejects scope of prefix tenant",
      args: createArgs(
        "--tenant",
        "acme",
        "--role",
        "service",
        "--scope",
        "tenant:acme2",
      ),
    },
    {
      name: "create rejects malformed scope",
      args: createArgs(
        "--tenant",
        "acme",
        "--role",
        "service",
        "--scope",
        "tenant:acme/../x",
      ),
    },
    {
      name: "revoke rejects unknown id",
      args: ["keys", "revoke", "nosuchkeyid", "--store", ""],
    },
  ];

  // The key list after one case is the list before the next, which saves
  // a CLI run per case. It is replaced before the comparison, so a case
  // that changes the list fails alone.
  let keysBefore: KeyEntry[];

  before(async () => {
    keysBefore = await listKeys(store.store);
  });

  for (const { name, args } of cases) {
    it(name, async () => {
      // The store path is only known once `before` has run.
      const resolved = args.map((arg, index) =>
        args[index - 1] === "--store" ? store.store : arg,
      );

      const result = await runCli(resolved);
      const keysAfter = await listKeys(store.store);
      const expectedKeys = keysBefore;
      keysBefore = keysAfter;

      assert.notEqual(result.code, 0);
      assert.notEqual(result.code, null);
      assert.ok(result.stderr.trim().length > 0, "a message on stderr");
      assert.equal(/kvs_/.test(result.stdout), false, "no key printed");
      assert.deepEqual(keysAfter, expectedKeys, "the key list is unchanged");
    });
  }
});

describe("demo key", () => {
  it("first start prints working demo key", { timeout: 30_000 }, async () => {
    const demoStore = await createTempStore();
    const demoServer = await startServer({ store: demoStore.store });
    try {
      const demoKey = demoServer.demoKey;
      assert.ok(demoKey !== undefined, "a demo key was printed");
      assert.match(demoKey, keyPattern);

      const client = await pool.connect(demoServer.url, { apiKey: demoKey });
      const written = await client.call("kv/set", {
        namespace: "tenant:demo",
        key: "greeting",
        value: "hello",
      });
      const read = await client.call("kv/get", {
        namespace: "tenant:demo",
        key: "greeting",
      });
      await pool.closeAll();
      const entries = await listKeys(demoStore.store);

      assert.equal(written.version, 1);
      assert.equal(read.value, "hello");
      assert.equal(read.updatedBy, keyIdOf(demoKey));
      assert.deepEqual(
        entries.map((entry) => [entry.id, entry.role]),
        [[keyIdOf(demoKey), "service"]],
        "the demo key is the only key, a service key",
      );
    } finally {
      await pool.closeAll();
      await withTimeout(demoServer.stop(), 10_000, "stopping the demo server");
      await demoStore.remove();
    }
  });

  it("second start creates no demo key", { timeout: 30_000 }, async () => {
    const demoStore = await createTempStore();
    const servers: ServerProcess[] = [];
    try {
      servers.push(await startServer({ store: demoStore.store }));
      const demoKey = servers[0].demoKey;
      assert.ok(demoKey !== undefined, "the first start printed a demo key");
      await withTimeout(servers[0].stop(), 10_000, "stopping the first server");
      servers.push(await startServer({ store: demoStore.store }));
      const restarted = servers[1];

      const client = await pool.connect(restarted.url, { apiKey: demoKey });
      const written = await client.call("kv/set", {
        namespace: "tenant:demo",
        key: "k",
        value: 1,
      });
      await pool.closeAll();
      const entries = await listKeys(demoStore.store);

      assert.equal(
        restarted.demoKey,
        undefined,
        "the second start printed none",
      );
      assert.equal(/kvs_/.test(restarted.stdout()), false);
      assert.equal(written.version, 1, "the first demo key still works");
      assert.deepEqual(
        entries.map((entry) => entry.id),
        [keyIdOf(demoKey)],
        "the demo key is the only key",
      );
    } finally {
      await pool.closeAll();
      for (const started of servers) await started.kill();
      await demoStore.remove();
    }
  });
});
