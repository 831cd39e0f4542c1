import type { ChildProcess } from "node:child_process";
import { after, before } from "node:test";

import { TestClient } from "./rpc-client.js";
import {
  createKey,
  startServer,
  type CreatedKey,
  type ServerProcess,
} from "./server-process.js";
import { createTestStore, type StoreKind, type TestStore } from "./stores.js";

/** The `keys create` options of one API key. */
export interface KeySpec {
  tenant: string;
  role?: "service" | "agent";
  scope?: string;
  name?: string;
}

export interface ServerFixtureOptions<KeyName extends string> {
  /**
   * The API keys to create before the server starts, by the name the
   * tests use for them. Without keys the server starts on an empty store
   * and creates its demo key.
   */
  keys?: Record<KeyName, KeySpec>;
  /** Extra `kvstream serve` arguments. */
  args?: string[];
  env?: Record<string, string>;
}

/**
 * A real kvstream server on a fresh store of one kind, with the API keys
 * a suite needs. `start` creates the store and the keys, then starts the
 * server. `stop` stops the server and deletes the store.
 */
export class ServerFixture<KeyName extends string = never> {
  readonly kind: StoreKind;
  private readonly options: ServerFixtureOptions<KeyName>;
  private testStore: TestStore | undefined;
  private serverProcess: ServerProcess | undefined;
  private createdKeys: Record<KeyName, CreatedKey> | undefined;

  constructor(kind: StoreKind, options: ServerFixtureOptions<KeyName> = {}) {
    this.kind = kind;
    this.options = options;
  }

  /** The store the server runs on. */
  get store(): TestStore {
    return this.testStore ?? notStarted("store");
  }

  get server(): ServerProcess {
    return this.serverProcess ?? notStarted("server");
  }

  /** The keys of `options.keys`, by the same names. */
  get keys(): Record<KeyName, CreatedKey> {
    return this.createdKeys ?? notStarted("keys");
  }

  /** Opens a test client authenticated with the key named `keyName`. */
  connect(keyName: KeyName): Promise<TestClient> {
    return TestClient.connect(this.server.url, {
      apiKey: this.keys[keyName].key,
    });
  }

  async start(): Promise<void> {
    if (this.testStore !== undefined) {
      throw new Error(
        "the server fixture was already started; create a new ServerFixture for another server",
      );
    }
    this.testStore = await createTestStore(this.kind);
    this.createdKeys = await createKeys(
      this.testStore.store,
      this.options.keys ?? ({} as Record<KeyName, KeySpec>),
    );
    this.serverProcess = await this.startProcess(this.options.args);
  }

  /**
   * Stops the server and starts a new one on the same store, with `args`
   * in place of the fixture's extra arguments when given.
   */
  async restart(
    args?: string[],
    onSpawn?: (child: ChildProcess) => void,
  ): Promise<ServerProcess> {
    await this.server.stop();
    this.serverProcess = undefined;
    this.serverProcess = await this.startProcess(
      args ?? this.options.args,
      onSpawn,
    );
    return this.serverProcess;
  }

  /**
   * Stops the server, unless it has already exited, and starts a new one
   * on the same store and port with the fixture's extra arguments, so
   * that clients reconnect to the URL they know.
   */
  restartOnSamePort(
    onSpawn?: (child: ChildProcess) => void,
  ): Promise<ServerProcess> {
    const port = String(this.server.port);
    return this.restart(
      [...(this.options.args ?? []), "--port", port],
      onSpawn,
    );
  }

  /**
   * Sends SIGCONT to the server, if there is one. A server that a test
   * stopped with SIGSTOP completes no close handshake and ignores SIGTERM
   * until it continues.
   */
  continueServer(): void {
    this.serverProcess?.process.kill("SIGCONT");
  }

  /** Stops the server and deletes the store, whatever `start` got to. */
  async stop(): Promise<void> {
    this.continueServer();
    try {
      await this.serverProcess?.stop();
    } finally {
      await this.testStore?.remove();
    }
  }

  private startProcess(
    args: string[] | undefined,
    onSpawn?: (child: ChildProcess) => void,
  ): Promise<ServerProcess> {
    return startServer({
      store: this.store.store,
      args,
      env: this.options.env,
      onSpawn,
    });
  }
}

/**
 * Creates a server fixture and starts it before the tests of the enclosing
 * suite, and stops it after them.
 */
export function useServerFixture<KeyName extends string = never>(
  kind: StoreKind,
  options: ServerFixtureOptions<KeyName> = {},
): ServerFixture<KeyName> {
  const fixture = new ServerFixture(kind, options);
  before(() => fixture.start());
  after(() => fixture.stop());
  return fixture;
}

/**
 * Creates the keys with the CLI. The first key alone creates the store,
 * because two processes that both find no store would both create it.
 * The rest are created concurrently.
 */
async function createKeys<KeyName extends string>(
  store: string,
  specs: Record<KeyName, KeySpec>,
): Promise<Record<KeyName, CreatedKey>> {
  const entries = Object.entries(specs) as Array<[KeyName, KeySpec]>;
  const keys = {} as Record<KeyName, CreatedKey>;
  if (entries.length === 0) return keys;

  const [firstName, firstSpec] = entries[0];
  keys[firstName] = await createKey(store, firstSpec);
  const rest = await Promise.all(
    entries.slice(1).map(([, spec]) => createKey(store, spec)),
  );
  entries.slice(1).forEach(([name], index) => (keys[name] = rest[index]));
  return keys;
}

function notStarted(member: string): never {
  throw new Error(
    `the server fixture has no ${member} yet; read it in a test or a hook that runs after start()`,
  );
}
