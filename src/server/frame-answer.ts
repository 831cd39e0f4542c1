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

export interface FrameOptions {
  logger: Logger;
  observe: RequestObserver;
  isWrite(method: string): boolean;
  /**
   * Bytes of responses one JSON-RPC batch may produce. Once its reads have
   * produced more, the rest of the batch is not executed and each
   * remaining request gets -32007: a batch of 1,000 reads of 4 MiB pages
   * would otherwise hold gigabytes in memory.
   */
  maxBatchResponseBytes: number;
}

function batchBudgetExceeded(limit: number): RpcError {
  return new RpcError(
    ErrorCode.RateLimited,
    `The responses to this batch passed ${limit} bytes, so this request was not executed; send it again in another message.`,
    { limit },
  );
}

/**
 * Executes every request of a frame and returns the response text, or
 * null when nothing is to be sent (notifications only). Requests start in
 * the order received; the scheduler behind `execute` keeps their effects
 * in that order while letting writes share a commit. Within a batch, each
 * read is awaited before the next request starts, so that the batch's
 * response size is known before more work is done.
 */
export async function answerFrame(
  frame: Frame,
  execute: ExecuteRequest,
  options: FrameOptions,
): Promise<string | null> {
  const { logger, observe } = options;
  if (frame.kind === "error") return errorResponse(null, frame.error);
  if (frame.kind === "single") {
    return answerEntry(frame.entry, execute, logger, observe);
  }

  const answers: Array<Promise<string | null>> = [];
  let responseBytes = 0;
  for (const entry of frame.entries) {
    if (responseBytes > options.maxBatchResponseBytes && entry.valid) {
      const refused = batchBudgetExceeded(options.maxBatchResponseBytes);
      observe(entry.method, refused.code);
      const isNotification = !Object.hasOwn(entry, "id");
      answers.push(
        Promise.resolve(
          isNotification ? null : errorResponse(entry.id!, refused),
        ),
      );
      continue;
    }

    const answer = answerEntry(entry, execute, logger, observe);
    answers.push(answer);
    if (entry.valid && !options.isWrite(entry.method)) {
      const text = await answer;
      responseBytes += text === null ? 0 : Buffer.byteLength(text);
    }
  }

  const parts = (await Promise.all(answers)).filter(
    (answer) => answer !== null,
  );
  return parts.length === 0 ? null : `[${parts.join(",")}]`;
}
