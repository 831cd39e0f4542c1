import { Option } from "commander";

import { defaultConfig } from "../server/config.js";

/** Creates the --store option of `serve`, which also accepts memory:. */
export function storeOption(): Option {
  return new Option(
    "--store <location>",
    "where the data lives: sqlite:PATH for a SQLite file, memory: for a throwaway store, or postgres://USER@HOST:PORT/DATABASE?schema=NAME (default schema public) for a store that several servers share",
  )
    .env("KVSTREAM_STORE")
    .default(defaultConfig.store);
}

/** Creates the --store option of the key commands, which need a file. */
export function keyStoreOption(): Option {
  return new Option(
    "--store <location>",
    "the store whose keys to manage, as sqlite:PATH or postgres://... (the same value the server was started with)",
  )
    .env("KVSTREAM_STORE")
    .default(defaultConfig.store);
}
