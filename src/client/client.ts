import { alreadyWatching } from "./client-errors.js";
import { Connection } from "./connection.js";
import type { KvError } from "./kv-error.js";
import { checkUrl, resolveOptions, type ClientOptions } from "./options.js";
import { paginate } from "./paginate.js";
import type { ConnectionState, StatusListener } from "./status.js";
import type {
  BatchParams,
  BatchResult,
  Change,
  DeleteParams,
  DeleteResult,
  Entry,
  GetParams,
  ListParams,
  ListResult,
  MgetParams,
  MgetResult,
  NamespacesParams,
  NamespacesResult,
  SetParams,
  SetResult,
} from "./types.js";
import { WatchRegistry } from "./watch-registry.js";
import { Watch, type WatchOptions } from "./watch.js";

export interface CallbackWatchOptions extends WatchOptions {
  /** Receives the error that ends the watch; without it, await `done`. */
  onError?: (error: KvError) => void;
}

/** A watch driven by a callback. */
export interface WatchHandle {
  readonly watch: Watch;
  /** Resolves when the watch is closed; rejects with the error that ended it. */
  readonly done: Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a client and resolves once its first WebSocket is open. A failed
 * first attempt rejects with ConnectFailed; later drops reconnect.
 */
export async function connect(
  url: string,
  options: ClientOptions,
): Promise<KvClient> {
  const client = new KvClient(url, options);
  await client.opened;
  return client;
}

/** A kvstream client; one instance shares one connection between all calls. */
export class KvClient {
  /**
   * Settles once the first connection attempt has opened or failed. A
   * close() before that rejects it with Closed.
   */
  readonly opened: Promise<void>;
  private readonly connection: Connection;
  private readonly watches = new WatchRegistry();
  private readonly maxBufferedChanges: number;

  constructor(url: string, options: ClientOptions) {
    checkUrl(url);
    const resolved = resolveOptions(options);
    this.maxBufferedChanges = resolved.maxBufferedChanges;
    this.connection = new Connection(url, resolved, {
      onOpen: () => this.watches.subscribeAll(),
      onDisconnect: () => this.watches.connectionLost(),
      onNotification: (method, params) => {
        if (method === "watch/change") this.watches.route(params as Change);
      },
      onStop: (error) => this.watches.endAll(error),
    });
    this.opened = this.connection.firstOpen;
  }

  get state(): ConnectionState {
    return this.connection.currentState;
  }

  /** Registers a listener of connection state changes; returns its remover. */
  onStatus(listener: StatusListener): () => void {
    return this.connection.onStatus(listener);
  }

  get(params: GetParams): Promise<Entry> {
    return this.connection.request("kv/get", params, "read");
  }

  /** Reads one page; see listPages for all of them. */
  list(params: ListParams): Promise<ListResult> {
    return this.connection.request("kv/list", params, "read");
  }

  /** Yields every page of kv/list from params.cursor (or the start) on. */
  listPages(params: ListParams): AsyncGenerator<ListResult> {
    return paginate((page) => this.list(page), params);
  }

  namespaces(params: NamespacesParams): Promise<NamespacesResult> {
    return this.connection.request("kv/namespaces", params, "read");
  }

  /** Yields every page of kv/namespaces from params.cursor (or the start) on. */
  namespacePages(params: NamespacesParams): AsyncGenerator<NamespacesResult> {
    return paginate((page) => this.namespaces(page), params);
  }

  mget(params: MgetParams): Promise<MgetResult> {
    return this.connection.request("kv/mget", params, "read");
  }

  set(params: SetParams): Promise<SetResult> {
    return this.connection.request("kv/set", params, "write");
  }

  delete(params: DeleteParams): Promise<DeleteResult> {
    return this.connection.request("kv/delete", params, "write");
  }

  batch(params: BatchParams): Promise<BatchResult> {
    return this.connection.request("kv/batch", params, "write");
  }

  /**
   * Watches a namespace and those below it. Without a listener it returns
   * the Watch, an async iterable; breaking the loop unsubscribes. With a
   * listener it calls it for each change, one at a time, awaiting what it
   * returns. Throws AlreadyWatching if this client already watches the
   * namespace.
   */
  watch(namespace: string, options?: WatchOptions): Watch;
  watch(
    namespace: string,
    listener: (change: Change) => void | Promise<void>,
    options?: CallbackWatchOptions,
  ): WatchHandle;
  watch(
    namespace: string,
    listenerOrOptions?:
      WatchOptions | ((change: Change) => void | Promise<void>),
    callbackOptions: CallbackWatchOptions = {},
  ): Watch | WatchHandle {
    if (typeof listenerOrOptions === "function") {
      const watch = this.startWatch(namespace, callbackOptions);
      return driveWatch(watch, listenerOrOptions, callbackOptions.onError);
    }
    return this.startWatch(namespace, listenerOrOptions ?? {});
  }

  /**
   * Stops the client: pending calls reject with Closed, watches end, and
   * the socket closes.
   */
  close(): Promise<void> {
    return this.connection.close();
  }

  private startWatch(namespace: string, options: WatchOptions): Watch {
    if (this.watches.has(namespace)) throw alreadyWatching(namespace);

    const watch = new Watch(
      namespace,
      this.connection,
      this.maxBufferedChanges,
      options,
      (ended) => this.watches.remove(ended),
    );
    this.watches.add(watch);
    watch.subscribeIfPending();
    if (this.state === "closed") watch.end(undefined);
    return watch;
  }
}

function driveWatch(
  watch: Watch,
  listener: (change: Change) => void | Promise<void>,
  onError: ((error: KvError) => void) | undefined,
): WatchHandle {
  const done = (async () => {
    try {
      for await (const change of watch) await listener(change);
    } catch (error) {
      onError?.(error as KvError);
      throw error;
    }
  })();
  // A caller that awaits `done` still gets the rejection. This handler
  // keeps a caller that only passed onError from an unhandled rejection.
  done.catch(() => {});
  return { watch, done, close: () => watch.close() };
}
