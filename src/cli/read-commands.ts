import type { Command } from "commander";

import {
  clientCommand,
  runWithClient,
  type ConnectionFlags,
} from "./client-connection.js";
import { integerParser } from "./client-input.js";
import { printDocument } from "./client-output.js";

/** The server's maximum page size for kv/list and kv/namespaces. */
const maxPageSize = 1000;

function pageSize(limit: number | undefined): number {
  return Math.min(maxPageSize, limit ?? maxPageSize);
}

/** Prints the items of every page, one per line, and stops after `limit`. */
async function printItems(
  pages: AsyncGenerator<{ items: unknown[] }>,
  limit = Infinity,
): Promise<void> {
  let remaining = limit;
  for await (const page of pages) {
    for (const item of page.items.slice(0, remaining)) printDocument(item);
    remaining -= page.items.length;
    if (remaining <= 0) return;
  }
}

export function getCommand(): Command {
  return clientCommand("get")
    .description(
      "print a key's entry: {namespace, key, value, version, updatedBy, updatedAt}",
    )
    .argument("<namespace>", "namespace, e.g. tenant:demo/user:u1")
    .argument("<key>", "key inside the namespace")
    .action(async (namespace: string, key: string, flags: ConnectionFlags) => {
      await runWithClient("get", flags, async (client) => {
        printDocument(await client.get({ namespace, key }));
      });
    });
}

export function listCommand(): Command {
  return clientCommand("list")
    .description(
      "print the keys of exactly this namespace, one entry per line, walking every page",
    )
    .argument("<namespace>", "namespace whose keys to list")
    .option("--prefix <prefix>", "only keys that start with this text")
    .option(
      "--limit <count>",
      "stop after this many entries (default: all)",
      integerParser(1),
    )
    .action(
      async (
        namespace: string,
        flags: ConnectionFlags & { prefix?: string; limit?: number },
      ) => {
        await runWithClient("list", flags, async (client) => {
          const pages = client.listPages({
            namespace,
            prefix: flags.prefix,
            limit: pageSize(flags.limit),
          });
          await printItems(pages, flags.limit);
        });
      },
    );
}

export function namespacesCommand(): Command {
  return clientCommand("namespaces")
    .description(
      "print the namespaces equal to or below this one that hold keys, one {namespace, keys} per line",
    )
    .argument("<namespace>", "namespace to start from, e.g. tenant:demo")
    .option(
      "--limit <count>",
      "stop after this many namespaces (default: all)",
      integerParser(1),
    )
    .action(
      async (
        namespace: string,
        flags: ConnectionFlags & { limit?: number },
      ) => {
        await runWithClient("namespaces", flags, async (client) => {
          const pages = client.namespacePages({
            namespace,
            limit: pageSize(flags.limit),
          });
          await printItems(pages, flags.limit);
        });
      },
    );
}

export function mgetCommand(): Command {
  return clientCommand("mget")
    .description(
      "print the entries of several keys of one namespace, one line per key in argument order; null where a key does not exist",
    )
    .argument("<namespace>", "namespace of the keys")
    .argument("<keys...>", "1 to 1,000 keys")
    .action(
      async (namespace: string, keys: string[], flags: ConnectionFlags) => {
        await runWithClient("mget", flags, async (client) => {
          const result = await client.mget({
            keys: keys.map((key) => ({ namespace, key })),
          });
          for (const item of result.items) printDocument(item);
        });
      },
    );
}
