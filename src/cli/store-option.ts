import { Option } from "commander";

import { defaultConfig } from "../server/config.js";

export function storeOption(): Option {
  return new Option(
    "--store <location>",
    "where the data lives: sqlite:PATH for a SQLite file, or memory: for a throwaway store",
  )
    .env("KVSTREAM_STORE")
    .default(defaultConfig.store);
}
