import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";

import { lockStoreFile } from "./sqlite-lock.js";
import { SqliteStore } from "./sqlite.js";
import type { Store } from "./store.js";

export interface StoreLocation {
  kind: "sqlite";
  /** An absolute file path, or ":memory:". */
  path: string;
}

/** Parses a --store value: `sqlite:PATH` or `memory:`. */
export function parseStoreLocation(text: string): StoreLocation {
  if (text === "memory:" || text === "sqlite::memory:") {
    return { kind: "sqlite", path: ":memory:" };
  }
  if (text.startsWith("sqlite:")) {
    const path = text.slice("sqlite:".length);
    if (path === "") {
      throw new Error(
        "--store sqlite: needs a file path, as in sqlite:./data/kvstream.db",
      );
    }
    return { kind: "sqlite", path: resolve(path) };
  }
  if (/^postgres(ql)?:\/\//.test(text)) {
    throw new Error(
      "--store postgres:// is not supported by this version; use sqlite:PATH or memory:.",
    );
  }
  throw new Error(
    `--store '${text}' is not a store location; use sqlite:PATH (a file) or memory: (a throwaway store).`,
  );
}

export interface OpenedStore {
  store: Store;
  /** Releases the server lock, if one was taken, after the store closes. */
  close(): Promise<void>;
}

export function openStore(
  location: StoreLocation,
  options: {
    historyChanges: number;
    historySeconds: number;
    /** Take the one-server-per-file lock; the CLI does not. */
    exclusive: boolean;
    /** Fail instead of creating a new, empty store file. */
    mustExist?: boolean;
    pruneIntervalMs?: number;
    maxStoreBytes?: number;
    onPruneError?: (error: unknown) => void;
  },
): OpenedStore {
  let unlock = () => {};
  if (location.path !== ":memory:") {
    const folder = dirname(location.path);
    if (options.mustExist && !existsSync(location.path)) {
      throw new Error(
        `No store file at ${location.path}; check --store (or KVSTREAM_STORE), or start the server once to create it.`,
      );
    }
    try {
      mkdirSync(folder, { recursive: true });
    } catch (error) {
      throw new Error(
        `Cannot create the folder ${folder} for --store: ${(error as Error).message}`,
      );
    }
    if (options.exclusive) unlock = lockStoreFile(location.path);
  }
  try {
    const store = new SqliteStore({
      path: location.path,
      historyChanges: options.historyChanges,
      historySeconds: options.historySeconds,
      pruneIntervalMs: options.exclusive ? options.pruneIntervalMs : 0,
      maxStoreBytes: options.maxStoreBytes,
      busyTimeoutMs: options.exclusive ? 1000 : 5000,
      onPruneError: options.onPruneError,
    });
    return {
      store,
      close: async () => {
        await store.close();
        unlock();
      },
    };
  } catch (error) {
    unlock();
    throw error;
  }
}
