import { readFileSync } from "node:fs";

/** The wire protocol's version, as in the kvstream.v1 subprotocol. */
export const protocolVersion = "1";

/** The package version, read once from package.json at start. */
export const packageVersion: string = JSON.parse(
  readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
).version;
