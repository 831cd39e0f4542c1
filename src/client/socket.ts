/**
 * The part of a WebSocket the client uses, met by the browser's native
 * WebSocket, Node's global one (Node 22 and later) and the `ws` package.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** Only in the ws package: destroys the connection without a handshake. */
  terminate?(): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: unknown,
) => WebSocketLike;

/** The value of readyState on an open socket, the same in every implementation. */
export const socketOpen = 1;

export interface SocketEvents {
  onOpen(): void;
  onMessage(text: string): void;
  /** A WebSocket ping arrived; only sockets of the `ws` package report it. */
  onPing(): void;
  onClose(code: number, reason: string): void;
}

/** A socket opened by openSocket, and whether it reports pings. */
export interface OpenedSocket {
  socket: WebSocketLike;
  reportsPings: boolean;
}

/**
 * Opens a WebSocket authenticated with `apiKey`. With the `ws` package the
 * key goes in the Authorization header. A native WebSocket cannot set
 * headers, so there the key goes in the subprotocol list `kvstream.v1,
 * bearer.<key>`, which the server accepts for browsers.
 */
export async function openSocket(
  url: string,
  apiKey: string,
  events: SocketEvents,
  WebSocketClass?: WebSocketConstructor,
): Promise<OpenedSocket> {
  const native = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  let socket: WebSocketLike;
  let reportsPings = false;
  // NOTE: tests cover `ws` on Node 20 and Chromium's WebSocket; Node 22's
  // global WebSocket takes this branch too but has not been run here.
  if (WebSocketClass !== undefined || native !== undefined) {
    const Constructor = (WebSocketClass ?? native)!;
    socket = new Constructor(url, ["kvstream.v1", `bearer.${apiKey}`]);
  } else {
    // Only Node before version 22 takes this branch, so browsers never
    // resolve the bare specifier.
    const { WebSocket: NodeWebSocket } = await import("ws");
    const nodeSocket = new NodeWebSocket(url, {
      headers: { authorization: `Bearer ${apiKey}` },
      perMessageDeflate: false,
    });
    // Browsers and Node's global WebSocket reply to pings without telling
    // the page, so only here can the client see that the server is alive
    // while no message arrives.
    nodeSocket.on("ping", () => events.onPing());
    reportsPings = true;
    socket = nodeSocket as unknown as WebSocketLike;
  }
  // An error is always followed by a close event, which does the work.
  // The ws package's error carries the cause (such as ECONNREFUSED), which
  // the close event lacks; a browser's error event has no detail.
  let errorMessage = "";
  socket.onerror = (event) => {
    const message = (event as { message?: unknown }).message;
    if (typeof message === "string") errorMessage = message;
  };
  socket.onopen = () => events.onOpen();
  socket.onmessage = (event) => events.onMessage(messageText(event.data));
  socket.onclose = (event) =>
    events.onClose(event.code, event.reason || errorMessage);
  return { socket, reportsPings };
}

function messageText(data: unknown): string {
  if (typeof data === "string") return data;
  // ws hands text frames over as a Buffer, whose toString decodes UTF-8.
  return String(data);
}
