import { Command, Option } from "commander";

import { redactPassword } from "../store/postgres-location.js";
import { openStore, parseStoreLocation } from "../store/open-store.js";
import { defaultConfig } from "../server/config.js";

/**
 * `kvstream migrate`: brings a store's schema up to date without serving,
 * so that an operator can upgrade the schema once before rolling out new
 * server processes. Servers also migrate at start.
 */
export function migrateCommand(): Command {
  return new Command("migrate")
    .description(
      "create the store if missing and apply pending schema migrations, then exit",
    )
    .addOption(
      new Option(
        "--store <location>",
        "the store to migrate, as sqlite:PATH or postgres://... (the same value the servers use)",
      )
        .env("KVSTREAM_STORE")
        .default(defaultConfig.store),
    )
    .action(async (options: { store: string }) => {
      const location = parseStoreLocation(options.store);
      if (location.kind === "sqlite" && location.path === ":memory:") {
        throw new Error(
          "A memory: store exists only inside its server process; migrate a sqlite:PATH or postgres:// store.",
        );
      }
      const opened = await openStore(location, {
        historyChanges: defaultConfig.historyChanges,
        historySeconds: defaultConfig.historySeconds,
        exclusive: false,
      });
      await opened.close();
      process.stdout.write(
        `migrated ${redactPassword(options.store)}: the schema is up to date\n`,
      );
    });
}
