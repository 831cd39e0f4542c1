import { randomUUID } from "node:crypto";

import type { Logger } from "pino";

import type { Entry, Frame, Request } from "../protocol/envelope.js";
import { ErrorCode, RpcError } from "../protocol/errors.js";
import { errorResponse, resultResponse } from "../protocol/response.js";

export type ExecuteRequest = (request: Request) => Promise<unknown>;

/** Observes each handled request, for metrics. */
export type RequestObserver = (method: string, code: number | 0) => void;

/**
 * Turns an unexpected error into -32603. The client gets only a
 * correlation id; the log gets the error itself.
 */
export function toRpcError(
  error: unknown,
  logger: Logger,
  method: string,
): RpcError {
  if (error instanceof RpcError) return error;
  const errorId = randomUUID();
  logger.error(
    { err: error, errorId, method },
    "request failed with an internal error",
  );
  return new RpcError(
    ErrorCode.InternalError,
    "Internal error; report the errorId to the operator.",
    { errorId },
  );
}

async function answerEntry(
  entry: Entry,
  execute: ExecuteRequest,
  logger: Logger,
  observe: RequestObserver,
): Promise<string | null> {
  if (!entry.valid) return errorResponse(entry.id, entry.error);

  const isNotification = !Object.hasOwn(entry, "id");
  try {
    const result = await execute(entry);
    observe(entry.method, 0);
    return isNotification ? null : resultResponse(entry.id!, result);
  } catch (error) {
    const rpcError = toRpcError(error, logger, entry.method);
    observe(entry.method, rpcError.code);
    return isNotification ? null : errorResponse(entry.id!, rpcError);
  }
}

/**
 * Executes every request of a frame and returns the response text, or
 * null when nothing is to be sent (notifications only). Requests start in
 * the order received; the scheduler behind `execute` keeps their effects
 * in that order while letting writes share a commit.
 */
export async function answerFrame(
  frame: Frame,
  execute: ExecuteRequest,
  logger: Logger,
  observe: RequestObserver,
): Promise<string | null> {
  if (frame.kind === "error") return errorResponse(null, frame.error);
  if (frame.kind === "single") {
    return answerEntry(frame.entry, execute, logger, observe);
  }

  const answers = await Promise.all(
    frame.entries.map((entry) => answerEntry(entry, execute, logger, observe)),
  );
  const parts = answers.filter((answer) => answer !== null);
  return parts.length === 0 ? null : `[${parts.join(",")}]`;
}
