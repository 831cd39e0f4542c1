#!/usr/bin/env node
import { Command } from "commander";

import { packageVersion } from "../version.js";
import { keysCommand } from "./keys.js";
import { migrateCommand } from "./migrate.js";
import { serveCommand } from "./serve.js";

const program = new Command("kvstream")
  .description(
    "Multi-tenant JSON key-value store with live watches over WebSocket JSON-RPC 2.0",
  )
  .version(packageVersion)
  .showHelpAfterError()
  .addCommand(serveCommand())
  .addCommand(keysCommand())
  .addCommand(migrateCommand());

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`kvstream: ${(error as Error).message}\n`);
  process.exit(1);
});
