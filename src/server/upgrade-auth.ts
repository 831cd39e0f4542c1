import type { IncomingMessage } from "node:http";

/** The subprotocol a browser client offers, and the only one selected. */
export const protocolName = "kvstream.v1";
const bearerProtocolPrefix = "bearer.";

/**
 * Reads `Bearer <token>`, comparing the scheme without regard to case as
 * HTTP authentication schemes are. Returns null for any other form.
 */
export function bearerTokenFromHeader(
  header: string | undefined,
): string | null {
  if (header === undefined) return null;
  const match = /^bearer +([^\s]+) *$/i.exec(header);
  return match ? match[1] : null;
}

/**
 * Finds the API key of an upgrade request. An Authorization header, when
 * present, alone decides; otherwise a `bearer.<KEY>` subprotocol, for
 * browsers, which cannot set headers on a WebSocket. A key in the query
 * string is never read: URLs end up in logs.
 */
export function tokenFromUpgrade(request: IncomingMessage): string | null {
  const header = request.headers.authorization;
  if (header !== undefined) return bearerTokenFromHeader(header);

  const offered = request.headers["sec-websocket-protocol"];
  if (offered === undefined) return null;
  for (const protocol of offered.split(",")) {
    const trimmed = protocol.trim();
    if (trimmed.startsWith(bearerProtocolPrefix)) {
      return trimmed.slice(bearerProtocolPrefix.length);
    }
  }
  return null;
}

/** Selects kvstream.v1 when offered; never the bearer token. */
export function selectProtocol(protocols: Set<string>): string | false {
  return protocols.has(protocolName) ? protocolName : false;
}
