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

function sendProblem(
  response: ServerResponse,
  status: number,
  message: string,
) {
  send(response, status, JSON.stringify({ error: message }), {
    connection: "close",
  });
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
 * JSON text is UTF-8 (RFC 8259 section 8.1). A fatal decoder rejects
 * invalid bytes instead of turning them into U+FFFD, which would store
 * something other than what was sent. (WebSocket text frames get the same
 * check from the ws package.)
 */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Reads the body, or returns null once it passes `limit` bytes. */
function readBody(
  request: IncomingMessage,
  limit: number,
): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    request.on("data", (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => {
      if (!over) resolve(Buffer.concat(chunks));
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
    send(response, 401, errorResponse(null, unauthenticated()), {
      connection: "close",
      "www-authenticate": 'Bearer realm="kvstream"',
    });
    return;
  }
  if (!isJsonMediaType(request.headers["content-type"])) {
    sendProblem(
      response,
      415,
      "Send the JSON-RPC message with 'Content-Type: application/json'.",
    );
    return;
  }
  const limit = server.config.maxMessageBytes;
  const declared = Number(request.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    sendProblem(response, 413, `The body is over the limit of ${limit} bytes.`);
    return;
  }
  const body = await readBody(request, limit);
  if (body === null) {
    sendProblem(response, 413, `The body is over the limit of ${limit} bytes.`);
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
    server.logger,
    server.observeRequest,
  );
  if (text === null) {
    response.writeHead(204);
    response.end();
    return;
  }
  send(response, 200, text);
}
