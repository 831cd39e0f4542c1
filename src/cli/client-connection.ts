import { Command, Option } from "commander";

import { connect, type KvClient } from "../client/client.js";
import { defaultOptions } from "../client/options.js";
import { integerParser } from "./client-input.js";
import {
  ExitStatus,
  UsageError,
  exitOnUsageError,
  reportError,
} from "./exit-status.js";

export const defaultUrl = "ws://127.0.0.1:7070/stream";

export interface ConnectionFlags {
  url: string;
  apiKey?: string;
  timeoutMs: number;
}

/**
 * Creates a client subcommand with the connection options, commander's
 * usage errors mapped to exit status 2, and its help after an error.
 */
export function clientCommand(name: string): Command {
  return new Command(name)
    .addOption(
      new Option("--url <url>", "WebSocket URL of the kvstream server")
        .env("KVSTREAM_URL")
        .default(defaultUrl),
    )
    .addOption(
      new Option(
        "--api-key <key>",
        "API key to connect with; prefer the variable, since other users can read command lines",
      ).env("KVSTREAM_API_KEY"),
    )
    .addOption(
      new Option(
        "--timeout-ms <ms>",
        "time in ms to wait for the connection and for each response",
      )
        .argParser(integerParser(1))
        .default(defaultOptions.requestTimeoutMs),
    )
    .showHelpAfterError()
    .exitOverride(exitOnUsageError);
}

/** Opens a client from the connection flags; a missing key is a usage error. */
export function connectWithFlags(flags: ConnectionFlags): Promise<KvClient> {
  if (flags.apiKey === undefined || flags.apiKey === "") {
    throw new UsageError(
      "no API key: set KVSTREAM_API_KEY or pass --api-key (`kvstream keys create` makes one)",
    );
  }
  return connect(flags.url, {
    apiKey: flags.apiKey,
    requestTimeoutMs: flags.timeoutMs,
    connectTimeoutMs: flags.timeoutMs,
  });
}

/**
 * Runs `prepare` (reading and checking input), then connects, runs
 * `action`, closes the client and sets the exit status: 0, or the status
 * that reportError returns for the error. Input is checked before
 * connecting, so a usage error is reported even when the server is down.
 */
export async function runWithClient<Input = undefined>(
  commandName: string,
  flags: ConnectionFlags,
  action: (client: KvClient, input: Input) => Promise<void>,
  prepare?: () => Promise<Input>,
): Promise<void> {
  let client: KvClient | undefined;
  try {
    const input = (await prepare?.()) as Input;
    client = await connectWithFlags(flags);
    await action(client, input);
    process.exitCode = ExitStatus.Ok;
  } catch (error) {
    process.exitCode = reportError(commandName, error);
  } finally {
    await client?.close();
  }
}
