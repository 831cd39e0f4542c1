import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";

import {
  parsePostgresLocation,
  redactPassword,
  type PostgresLocation,
} from "./postgres-location.js";
import { MissingStoreError } from "./postgres-schema.js";
import { PostgresStore } from "./postgres.js";
import { lockStoreFile } from "./sqlite-lock.js";
import { SqliteStore } from "./sqlite.js";
import type { Store } from "./store.js";

export interface SqliteLocation {
  kind: "sqlite";
  /** An absolute file path, or ":memory:". */
  path: string;
}

export type StoreLocation = SqliteLocation | PostgresLocation;

/**
 * Parses a --store value: `sqlite:PATH`, `memory:`, or a PostgreSQL URL
 * `postgres://...` (also `postgresql://`) with an optional `?schema=NAME`.
 */
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
  if (/^postgres(ql)?:\/\//.test(text)) return parsePostgresLocation(text);
  throw new Error(
    `--store '${text}' is not a store location; use sqlite:PATH (a file), memory: (a throwaway store) or postgres://USER@HOST/DATABASE?schema=NAME.`,
  );
}

export interface OpenedStore {
  store: Store;
  /** Releases the server lock, if one was taken, after the store closes. */
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  historyChanges: number;
  historySeconds: number;
  /**
   * True for a server: take the one-server-per-file lock of SQLite and
   * prune history. The CLI does neither.
   */
  exclusive: boolean;
  /** Fail instead of creating a new, empty store file or schema. */
  mustExist?: boolean;
  pruneIntervalMs?: number;
  maxStoreBytes?: number;
  onPruneError?: (error: unknown) => void;
  /** Called once per failing PostgreSQL background task until it works. */
  onBackgroundError?: (task: string, error: unknown) => void;
}

export async function openStore(
  location: StoreLocation,
  options: OpenStoreOptions,
): Promise<OpenedStore> {
  if (location.kind === "postgres") {
    const store = await PostgresStore.open({
      url: location.url,
      schema: location.schema,
      historyChanges: options.historyChanges,
      historySeconds: options.historySeconds,
      pruneIntervalMs: options.exclusive ? options.pruneIntervalMs : 0,
      applicationName: options.exclusive ? "kvstream" : "kvstream-cli",
      onBackgroundError: options.onBackgroundError,
      mustExist: options.mustExist,
    }).catch((error: unknown) => {
      if (error instanceof MissingStoreError) {
        throw new Error(
          `No kvstream store at ${redactPassword(location.url)}: ${error.message}. Check --store (or KVSTREAM_STORE), or start the server once to create it.`,
        );
      }
      const reason =
        (error as { data?: { reason?: string } }).data?.reason ??
        (error as Error).message;
      throw new Error(
        `Cannot open the PostgreSQL store ${redactPassword(location.url)} (schema ${location.schema}): ${reason}. Check --store (or KVSTREAM_STORE) and that the database accepts connections.`,
      );
    });
    return { store, close: () => store.close() };
  }
  return openSqliteStore(location, options);
}

function openSqliteStore(
  location: SqliteLocation,
  options: OpenStoreOptions,
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
