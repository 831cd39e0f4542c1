import { CommanderError } from "commander";

import { ClientErrorCode } from "../client/error-codes.js";
import { KvError } from "../client/kv-error.js";
import { errorCatalog } from "../protocol/errors.js";

/** Exit statuses of the client commands (get, set, watch, ...). */
export const ExitStatus = {
  Ok: 0,
  /** The server returned an error, or closed the connection with 4401. */
  ServerError: 1,
  /** Invalid arguments, options or input; nothing was sent. */
  UsageError: 2,
  /** The client failed: no connection, timeout, or a write's outcome unknown. */
  ConnectionError: 3,
} as const;

/** Invalid arguments or input, found before anything was sent. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

const codeNames = new Map<number, string>([
  ...errorCatalog.map((entry): [number, string] => [entry.code, entry.name]),
  ...Object.entries(ClientErrorCode).map(([name, code]): [number, string] => [
    code,
    spaceWords(name),
  ]),
]);

/** Turns a constant's name such as OutcomeUnknown into "Outcome Unknown". */
function spaceWords(name: string): string {
  return name.replace(/([a-z])([A-Z])/g, "$1 $2");
}

const clientCodes = new Set<number>(Object.values(ClientErrorCode));

/** Client codes of input that the client rejected before sending it. */
const usageCodes = new Set<number>([
  ClientErrorCode.InvalidOptions,
  ClientErrorCode.NotSerializable,
]);

/**
 * Writes the error to stderr, with its code and data for a KvError, and
 * returns the exit status it calls for.
 */
export function reportError(commandName: string, error: unknown): number {
  const prefix = `kvstream ${commandName}: `;
  if (error instanceof UsageError) {
    process.stderr.write(`${prefix}${error.message}\n`);
    return ExitStatus.UsageError;
  }
  if (error instanceof KvError) {
    const name = codeNames.get(error.code) ?? "Unknown Error";
    const data =
      error.data === undefined ? "" : ` data: ${JSON.stringify(error.data)}`;
    process.stderr.write(
      `${prefix}error ${error.code} (${name}): ${error.message}${data}\n`,
    );
    if (usageCodes.has(error.code)) return ExitStatus.UsageError;
    return clientCodes.has(error.code)
      ? ExitStatus.ConnectionError
      : ExitStatus.ServerError;
  }
  process.stderr.write(`${prefix}${(error as Error)?.message ?? error}\n`);
  return ExitStatus.ServerError;
}

/**
 * Makes commander end with status 2 on a usage error, and 0 after --help,
 * instead of its default 1, which the client commands keep for server
 * errors. Commander has already printed the message.
 */
export function exitOnUsageError(error: CommanderError): never {
  process.exit(error.exitCode === 0 ? ExitStatus.Ok : ExitStatus.UsageError);
}
