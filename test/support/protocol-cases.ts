import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import type { Message, TestClient } from "./rpc-client.js";

let probeCount = 0;

/**
 * Sends one raw frame and resolves with the first frame received after it.
 * Use it only while no other request of the client is outstanding.
 */
export function exchangeRaw(
  client: TestClient,
  frame: string | Buffer,
  options: { binary?: boolean } = {},
): Promise<any> {
  const next = client.nextFrame();
  client.sendRaw(frame, options);
  return next;
}

/**
 * Runs `send`, then sends a probe request and returns every frame that
 * arrived before the probe's response. The server responds to the requests
 * of one connection in order, so anything it sent for `send` comes first.
 */
export async function framesBeforeProbe(
  client: TestClient,
  send: () => void,
): Promise<any[]> {
  const start = client.received.length;
  send();

  probeCount += 1;
  const probeId = `probe-${probeCount}`;
  client.sendRaw(
    JSON.stringify({ jsonrpc: "2.0", id: probeId, method: "probe/none" }),
  );
  await client.waitFor(() =>
    client.received
      .slice(start)
      .some((frame) => !Array.isArray(frame) && frame?.id === probeId),
  );

  const frames = client.received.slice(start);
  const probeIndex = frames.findIndex(
    (frame) => !Array.isArray(frame) && frame?.id === probeId,
  );
  return frames.slice(0, probeIndex);
}

/**
 * Asserts that `response` is a JSON-RPC 2.0 error response with `code` and
 * `id`, and returns its error object.
 */
export function assertErrorResponse(
  response: any,
  code: number,
  id: string | number | null,
): Message {
  assert.equal(typeof response, "object");
  assert.ok(response !== null, "response is null");
  assert.ok(!Array.isArray(response), "response is an array");
  assert.equal(response.jsonrpc, "2.0");
  assert.equal("result" in response, false, JSON.stringify(response));
  assert.equal(response.error?.code, code, JSON.stringify(response.error));
  assert.deepEqual(response.id, id);
  assertErrorObject(response.error);
  return response.error;
}

/** Asserts the members of an error object: code, message and optional data. */
export function assertErrorObject(error: any): void {
  assert.equal(Number.isInteger(error.code), true);
  assert.equal(typeof error.message, "string");
  assert.ok(error.message.length > 0, "error message is empty");
  for (const name of Object.keys(error)) {
    assert.ok(
      ["code", "message", "data"].includes(name),
      `unexpected error member ${name}`,
    );
  }
  if ("data" in error) {
    assert.equal(typeof error.data, "object");
    assert.ok(error.data !== null, "error data is null");
    assert.ok(!Array.isArray(error.data), "error data is an array");
  }
}

/** Asserts that `value` is an object with exactly the members `names`. */
export function assertMembers(value: unknown, names: string[]): void {
  assert.equal(typeof value, "object");
  assert.ok(value !== null, "expected an object, got null");
  assert.deepEqual(Object.keys(value as object).sort(), [...names].sort());
}

/** Returns the JSON text of one JSON-RPC request. */
export function requestText(
  id: string | number | null,
  method: string,
  params?: unknown,
): string {
  const message: Record<string, unknown> = { jsonrpc: "2.0", id, method };
  if (params !== undefined) message.params = params;
  return JSON.stringify(message);
}

/** Sorts strings by their UTF-8 bytes, the key order of the store. */
export function sortByUtf8(values: string[]): string[] {
  return [...values].sort((a, b) =>
    Buffer.compare(Buffer.from(a), Buffer.from(b)),
  );
}

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * Sends one HTTP request on a new connection and resolves with the whole
 * response. A socket error after the response has arrived is ignored,
 * because a server may respond before it reads (or instead of reading) a
 * large body.
 */
export function sendHttp(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    /** Sends the body in 64 KiB chunks without a Content-Length. */
    chunked?: boolean;
  } = {},
): Promise<HttpReply> {
  return new Promise((resolveReply, rejectReply) => {
    let responded = false;
    const outgoing = request(url, {
      method: options.method ?? "GET",
      headers: options.headers,
      agent: false,
    });
    outgoing.on("response", (incoming) => {
      responded = true;
      const chunks: Buffer[] = [];
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
      incoming.on("end", () =>
        resolveReply({
          status: incoming.statusCode ?? 0,
          headers: incoming.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      incoming.on("error", rejectReply);
    });
    outgoing.on("error", (error) => {
      if (!responded) rejectReply(error);
    });

    if (!options.chunked || options.body === undefined) {
      outgoing.end(options.body);
      return;
    }
    const body = Buffer.from(options.body);
    const chunkBytes = 64 * 1024;
    for (let start = 0; start < body.length; start += chunkBytes) {
      outgoing.write(body.subarray(start, start + chunkBytes));
    }
    outgoing.end();
  });
}

/** Sends a JSON-RPC body to `POST /rpc`. */
export function postRpc(
  httpUrl: string,
  body: string | Buffer,
  options: {
    apiKey?: string;
    contentType?: string | null;
    chunked?: boolean;
  } = {},
): Promise<HttpReply> {
  const headers: Record<string, string> = {};
  if (options.apiKey !== undefined) {
    headers.authorization = `Bearer ${options.apiKey}`;
  }
  if (options.contentType !== null) {
    headers["content-type"] = options.contentType ?? "application/json";
  }
  return sendHttp(`${httpUrl}/rpc`, {
    method: "POST",
    headers,
    body,
    chunked: options.chunked,
  });
}

/**
 * Sends a WebSocket upgrade request and resolves with the HTTP status of
 * the response (101 when the upgrade succeeded), then closes the socket.
 */
export function upgradeStatus(
  url: string,
  headers: Record<string, string> = {},
): Promise<number> {
  return new Promise((resolveStatus, rejectStatus) => {
    const outgoing = request(url, {
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-key": randomBytes(16).toString("base64"),
        "sec-websocket-version": "13",
        ...headers,
      },
      agent: false,
    });
    outgoing.on("upgrade", (response, socket) => {
      socket.destroy();
      resolveStatus(response.statusCode ?? 0);
    });
    outgoing.on("response", (response) => {
      response.resume();
      resolveStatus(response.statusCode ?? 0);
      outgoing.destroy();
    });
    outgoing.on("error", rejectStatus);
    outgoing.end();
  });
}
