import { after, afterEach, before } from "node:test";

import {
  connect,
  type ClientOptions,
  type KvClient,
} from "../../src/client/index.js";
import {
  ServerFixture,
  type KeySpec,
  type ServerFixtureOptions,
} from "./server-fixture.js";
import { createKey, type CreatedKey } from "./server-process.js";

export interface ClientServerOptions<
  KeyName extends string,
> extends ServerFixtureOptions<KeyName> {
  /** The API key that clients connect with unless their options name another. */
  key: KeySpec;
}

/** The `connect` options of one SDK client, over the fixture's defaults. */
export interface OpenOptions<
  KeyName extends string,
> extends Partial<ClientOptions> {
  /** The WebSocket URL, such as a proxy's. By default the server's. */
  url?: string;
  /** The name of one of the fixture's `keys` to connect with. */
  key?: KeyName;
}

/**
 * A real kvstream server on a fresh SQLite store, an API key and the SDK
 * clients that the tests open on it. The SDK suites test the client, so
 * one store kind is enough for them.
 */
export class ClientServer<
  KeyName extends string = never,
> extends ServerFixture<KeyName> {
  private readonly keySpec: KeySpec;
  private createdKey: CreatedKey | undefined;
  private starting: Promise<void> | undefined;
  private readonly testClients: KvClient[] = [];
  private readonly sharedClients: KvClient[] = [];

  constructor(options: ClientServerOptions<KeyName>) {
    super("sqlite", options);
    this.keySpec = options.key;
  }

  /** The key of `options.key`. */
  get key(): CreatedKey {
    if (this.createdKey === undefined) {
      throw new Error(
        "the client server has no key before start(), so read it in a test or in a hook that runs after start()",
      );
    }
    return this.createdKey;
  }

  /** Opens an SDK client that is closed after the current test. */
  open(options: OpenOptions<KeyName> = {}): Promise<KvClient> {
    return this.openInto(this.testClients, options);
  }

  /**
   * Opens an SDK client that the tests of a suite share, such as one
   * opened in a `before` hook. It is closed when the fixture stops.
   */
  openShared(options: OpenOptions<KeyName> = {}): Promise<KvClient> {
    return this.openInto(this.sharedClients, options);
  }

  /** Starts the server, then creates the key of `options.key` with the CLI. */
  override async start(): Promise<void> {
    this.starting = (async () => {
      await super.start();
      this.createdKey = await createKey(this.store.store, this.keySpec);
    })();
    await this.starting;
  }

  /**
   * Continues the server in case a test stopped it, then closes the
   * clients that `open` returned since the last call.
   */
  async closeTestClients(): Promise<void> {
    this.continueServer();
    await closeAll(this.testClients.splice(0));
  }

  /** Closes every client, then stops the server and deletes the store. */
  override async stop(): Promise<void> {
    this.continueServer();
    try {
      await closeAll([
        ...this.testClients.splice(0),
        ...this.sharedClients.splice(0),
      ]);
    } finally {
      await super.stop();
    }
  }

  private async openInto(
    clients: KvClient[],
    options: OpenOptions<KeyName>,
  ): Promise<KvClient> {
    if (this.starting === undefined) {
      throw new Error(
        "a client was opened before the client server started. Open it in a test or in a hook registered after useClientServer().",
      );
    }
    // At the top level of a file, node:test (Node 20) starts each `before`
    // hook as it is registered, without waiting for the hooks before it,
    // so a file's own hook can get here while start() still runs.
    await this.starting;

    const { url = this.server.url, key, ...clientOptions } = options;
    if (key !== undefined && clientOptions.apiKey !== undefined) {
      throw new Error(
        `the client options have both key "${key}" and apiKey. Pass only one of them.`,
      );
    }
    const apiKey = key === undefined ? this.key.key : this.keys[key].key;
    const client = await connect(url, { apiKey, ...clientOptions });
    clients.push(client);
    return client;
  }
}

/**
 * Creates a client server for the enclosing suite. It starts before the
 * suite's tests, closes each test's clients after that test, and stops
 * after the suite's tests.
 */
export function useClientServer<KeyName extends string = never>(
  options: ClientServerOptions<KeyName>,
): ClientServer<KeyName> {
  const fixture = new ClientServer(options);
  before(() => fixture.start());
  afterEach(() => fixture.closeTestClients());
  after(() => fixture.stop());
  return fixture;
}

async function closeAll(clients: KvClient[]): Promise<void> {
  await Promise.all(clients.map((client) => client.close()));
}
