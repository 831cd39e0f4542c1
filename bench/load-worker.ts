/**
 * Entry point of a load generator process, started by the coordinator
 * with child_process.fork so that generating load does not compete with
 * the coordinator's own event loop.
 */
import { runRpcLoad } from "./rpc-load.js";
import type { WorkerCommand, WorkerReply } from "./tasks.js";
import { WatcherGroup } from "./watch-load.js";

let watchers: WatcherGroup | undefined;

function reply(message: WorkerReply): void {
  process.send!(message);
}

async function handle(command: WorkerCommand): Promise<void> {
  if (command.command === "run") {
    reply({ reply: "rpc-done", result: await runRpcLoad(command.task) });
  } else if (command.command === "watch") {
    watchers = new WatcherGroup(command.task);
    reply({ reply: "watching", ...(await watchers.open()) });
  } else {
    if (!watchers) throw new Error("finish arrived before watch");
    reply({
      reply: "watch-done",
      result: watchers.finish(command.expectedSeqs),
    });
    watchers = undefined;
  }
}

process.on("message", (command: WorkerCommand) => {
  handle(command).catch((error: Error) => {
    reply({ reply: "failed", message: error.stack ?? error.message });
  });
});
process.on("disconnect", () => process.exit(0));
