#!/usr/bin/env node
import { Command } from "commander";

import { packageVersion } from "../version.js";
import { keysCommand } from "./keys.js";
import { migrateCommand } from "./migrate.js";
import {
  getCommand,
  listCommand,
  mgetCommand,
  namespacesCommand,
} from "./read-commands.js";
import { serveCommand } from "./serve.js";
import { watchCommand } from "./watch-command.js";
import { batchCommand, deleteCommand, setCommand } from "./write-commands.js";

const program = new Command("kvstream")
  .description(
    "Multi-tenant JSON key-value store with live watches over WebSocket JSON-RPC 2.0",
  )
  .version(packageVersion)
  .showHelpAfterError()
  .addCommand(serveCommand())
  .addCommand(keysCommand())
  .addCommand(migrateCommand())
  .addCommand(getCommand())
  .addCommand(setCommand())
  .addCommand(deleteCommand())
  .addCommand(listCommand())
  .addCommand(namespacesCommand())
  .addCommand(mgetCommand())
  .addCommand(batchCommand())
  .addCommand(watchCommand())
  .addHelpText(
    "after",
    `
The client commands (get, set, delete, list, namespaces, mget, batch,
watch) connect to --url (KVSTREAM_URL) with --api-key (KVSTREAM_API_KEY).
They print JSON, one document per line when stdout is not a terminal.

Exit statuses of the client commands:
  0  success
  1  the server returned an error (code and message on stderr)
  2  usage error: invalid arguments, options or input; nothing was sent
  3  client error: no connection, timeout, or a write's outcome unknown
`,
  );

// A reader that exits early, such as \`head -1\`, closes the pipe; that is
// not an error of the command.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`kvstream: ${(error as Error).message}\n`);
  process.exit(1);
});
