import { createHash, randomBytes } from "node:crypto";

/**
 * API keys look like `kvs_<id>_<secret>`: a public id that logs, `keys list`
 * and `updatedBy` may show, and a 256-bit random secret in base64url. Only
 * the SHA-256 of the whole key is stored: a slow password hash buys nothing
 * for 256-bit random secrets and would cost every connection.
 */
const keyPattern = /^kvs_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

export type Role = "service" | "agent";

export const roles: readonly Role[] = ["service", "agent"];

export interface ApiKeyRecord {
  id: string;
  tenantId: string;
  role: Role;
  /** A namespace the key is limited to, or null for the whole tenant. */
  scope: string | null;
  name: string | null;
  createdAt: number;
  revokedAt: number | null;
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

function randomId(): string {
  const bytes = randomBytes(12);
  let id = "";
  for (const byte of bytes) id += idAlphabet[byte % idAlphabet.length];
  return id;
}

export function generateApiKey(): { id: string; key: string } {
  const id = randomId();
  const secret = randomBytes(32).toString("base64url");
  return { id, key: `kvs_${id}_${secret}` };
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** True when the text has the shape of an API key, valid or not. */
export function looksLikeApiKey(text: string): boolean {
  return keyPattern.test(text);
}
