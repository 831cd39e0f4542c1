import type { IncomingMessage, ServerResponse } from "node:http";

import type { ApiKeyRecord } from "../auth/api-key.js";
import { dispatch } from "../methods/dispatch.js";
import { parseFrame, type Frame } from "../protocol/envelope.js";
import { ErrorCode, RpcError, unauthenticated } from "../protocol/errors.js";
import { errorResponse } from "../protocol/response.js";
import { bearerTokenFromHeader } from "./upgrade-auth.js";
import { answerFrame } from "./frame-answer.js";
import { RequestScheduler } from "./request-scheduler.js";
import type { ServerContext } from "./server-context.js";

function send(
  response: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...headers,
  });
  response.end(body);
}

/**
 * Sends an error status without using the body, after discarding what
 * the client is still sending, up to maxDiscardedBytes; see readBody.
 */
async function rejectRequest(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): Promise<void> {
  const declared = Number(request.headers["content-length"]);
  if (!(Number.isFinite(declared) && declared > maxDiscardedBytes)) {
    await readBody(request, 0).catch(() => null);
  }
  send(response, status, body, { connection: "close", ...headers });
}

function problem(message: string): string {
  return JSON.stringify({ error: message });
}

function isJsonMediaType(header: string | undefined): boolean {
  if (header === undefined) return false;
  return header.split(";")[0].trim().toLowerCase() === "application/json";
}

async function authenticate(
  request: IncomingMessage,
  server: ServerContext,
): Promise<ApiKeyRecord | null> {
  const token = bearerTokenFromHeader(request.headers.authorization);
  return token ? server.keys.authenticate(token) : null;
}

/**
 * JSON text on the wire is UTF-8. A fatal decoder rejects
 * invalid bytes instead of turning them into U+FFFD, which would store
 * something other than what was sent. (WebSocket text frames get the same
 * check from the ws package.)
 */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Bytes of an oversized body that are read and discarded before the 413
 * goes out. A client that is still sending when the server responds and
 * closes gets a connection reset instead of the 413, so a moderately
 * oversized body is drained first. Past this, the connection is closed at
 * once.
 */
const maxDiscardedBytes = 16 * 1024 * 1024;

/**
 * Reads the body. Resolves with null for a body over `limit` once it has
 * ended, or as soon as it passes `limit` + maxDiscardedBytes.
 */
function readBody(
  request: IncomingMessage,
  limit: number,
): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      chunks.length = 0;
      if (size > limit + maxDiscardedBytes) resolve(null);
    });
    request.on("end", () => {
      resolve(size > limit ? null : Buffer.concat(chunks));
    });
    request.on("error", reject);
  });
}

/**
 * POST /rpc: JSON-RPC over plain HTTP for callers that cannot hold a
 * WebSocket. The key is checked before the body is read, then the media
 * type, then the size. watch/* is not available here.
 */
export async function handleHttpRpc(
  request: IncomingMessage,
  response: ServerResponse,
  server: ServerContext,
): Promise<void> {
  const key = await authenticate(request, server);
  if (!key) {
    await rejectRequest(
      request,
      response,
      401,
      errorResponse(null, unauthenticated()),
      { "www-authenticate": 'Bearer realm="kvstream"' },
    );
    return;
  }
  if (!isJsonMediaType(request.headers["content-type"])) {
    await rejectRequest(
      request,
      response,
      415,
      problem(
        "Send the JSON-RPC message with 'Content-Type: application/json'.",
      ),
    );
    return;
  }
  const limit = server.config.maxMessageBytes;
  const tooLarge = problem(`The body is over the limit of ${limit} bytes.`);
  const declared = Number(request.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit + maxDiscardedBytes) {
    send(response, 413, tooLarge, { connection: "close" });
    return;
  }
  const body = await readBody(request, limit);
  if (body === null) {
    send(response, 413, tooLarge, { connection: "close" });
    return;
  }

  const scheduler = new RequestScheduler((method) =>
    server.isWriteMethod(method),
  );
  const context = {
    key,
    store: server.store,
    limits: { maxValueBytes: server.config.maxValueBytes },
    isKeyActive: () => server.keys.isActive(key.id),
    takeRateToken: () => server.rateLimiter.take(key.id),
    openRpcDocument: server.openRpcDocument,
  };
  let frame: Frame;
  try {
    frame = parseFrame(utf8.decode(body));
  } catch {
    frame = {
      kind: "error",
      error: new RpcError(
        ErrorCode.ParseError,
        "The body is not valid UTF-8; send JSON text encoded as UTF-8.",
      ),
    };
  }
  const text = await answerFrame(
    frame,
    (rpcRequest) =>
      scheduler.run(rpcRequest, () => dispatch(rpcRequest, context)),
    {
      logger: server.logger,
      observe: server.observeRequest,
      isWrite: server.isWriteMethod,
      maxBatchResponseBytes: server.config.maxOutboundBytes,
    },
  );
  if (text === null) {
    response.writeHead(204);
    response.end();
    return;
  }
  send(response, 200, text);
}
