import type { Command } from "commander";

import type { StatusEvent } from "../client/status.js";
import type { Change } from "../client/types.js";
import {
  clientCommand,
  runWithClient,
  type ConnectionFlags,
} from "./client-connection.js";
import { integerParser } from "./client-input.js";
import { printDocument } from "./client-output.js";

interface WatchFlags extends ConnectionFlags {
  fromSeq?: number;
  storeId?: string;
}

export function watchCommand(): Command {
  return clientCommand("watch")
    .description(
      "print every change of a namespace and those below it, one watch/change document per line, until interrupted; reconnects and resumes after a dropped connection without missing or repeating a change",
    )
    .argument("<namespace>", "namespace to watch, e.g. tenant:demo")
    .option(
      "--from-seq <seq>",
      "first print the retained changes with a seq above this one",
      integerParser(0),
    )
    .option(
      "--store-id <id>",
      "the storeId that came with --from-seq; the watch fails with -32006 if the store is another one",
    )
    .action(async (namespace: string, flags: WatchFlags) => {
      await runWithClient("watch", flags, async (client) => {
        client.onStatus(reportStatus);
        const watch = client.watch(namespace, {
          fromSeq: flags.fromSeq,
          storeId: flags.storeId,
          onResume: ({ fromSeq }) =>
            process.stderr.write(
              `kvstream watch: resumed ${namespace} after seq ${fromSeq}\n`,
            ),
        });
        const stop = () => void watch.close();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        for await (const change of watch) printChange(change);
      });
    });
}

function printChange(change: Change): void {
  if (!process.stdout.isTTY) {
    printDocument(change);
    return;
  }
  const value = change.op === "set" ? ` = ${JSON.stringify(change.value)}` : "";
  process.stdout.write(
    `seq ${change.seq} ${change.op} ${change.namespace} ${change.key}${value} (version ${change.version} by ${change.actor})\n`,
  );
}

function reportStatus(event: StatusEvent): void {
  if (event.state !== "reconnecting") return;
  process.stderr.write(
    `kvstream watch: connection lost (close code ${event.closeCode}); reconnecting in ${event.delayMs} ms, attempt ${event.attempt}\n`,
  );
}
