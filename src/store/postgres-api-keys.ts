import type { Sql, TransactionSql } from "postgres";

import type { ApiKeyRecord } from "../auth/api-key.js";
import { toApiKey, type ApiKeyRow } from "./rows.js";
import type { NewApiKey } from "./store.js";

const apiKeyColumns =
  "id, tenant_id, role, scope, name, created_at, revoked_at";

/**
 * Inserts an API key and bumps the version that key registries poll, in
 * one transaction.
 */
export async function insertApiKey(sql: Sql, key: NewApiKey): Promise<void> {
  await sql.begin((tx) => insertKeyRow(tx, key));
}

/**
 * Inserts `key` only if no API key exists yet. Returns whether it did.
 * The version row is locked first, so of two processes that try at once,
 * the second waits for the first to commit and then finds its key.
 */
export function insertFirstApiKey(sql: Sql, key: NewApiKey) {
  return sql.begin(async (tx) => {
    await tx`SELECT 1 FROM meta WHERE name = 'api_keys_version' FOR UPDATE`;
    const existing = await tx`SELECT 1 FROM api_keys LIMIT 1`;
    if (existing.length > 0) return false;
    await insertKeyRow(tx, key);
    return true;
  });
}

async function insertKeyRow(
  tx: TransactionSql,
  { record, hash }: NewApiKey,
): Promise<void> {
  // The bump goes first because it locks the version row, so this insert
  // and the check in insertFirstApiKey run one after the other.
  await bumpApiKeysVersion(tx);
  await tx`
    INSERT INTO api_keys (id, hash, tenant_id, role, scope, name, created_at)
    VALUES (${record.id}, ${hash}, ${record.tenantId}, ${record.role},
            ${record.scope}, ${record.name}, ${record.createdAt})
  `;
}

async function bumpApiKeysVersion(tx: TransactionSql): Promise<void> {
  await tx`
    UPDATE meta SET value = (value::bigint + 1)::text
    WHERE name = 'api_keys_version'
  `;
}

export async function selectApiKeys(sql: Sql): Promise<ApiKeyRecord[]> {
  const rows = await sql<ApiKeyRow[]>`
    SELECT ${sql.unsafe(apiKeyColumns)} FROM api_keys
    ORDER BY created_at, id
  `;
  return rows.map(toApiKey);
}

export async function selectApiKey(
  sql: Sql,
  hash: string,
): Promise<ApiKeyRecord | null> {
  const [row] = await sql<ApiKeyRow[]>`
    SELECT ${sql.unsafe(apiKeyColumns)} FROM api_keys
    WHERE hash = ${hash}
  `;
  return row ? toApiKey(row) : null;
}

/**
 * Marks the key `id` revoked at `at` unless it already is. Returns false
 * when no such key exists.
 */
export function revokeApiKey(sql: Sql, id: string, at: number) {
  return sql.begin(async (tx) => {
    const result = await tx`
      UPDATE api_keys SET revoked_at = ${at}
      WHERE id = ${id} AND revoked_at IS NULL
    `;
    if (result.count === 0) {
      const found = await tx`SELECT 1 FROM api_keys WHERE id = ${id}`;
      return found.length > 0;
    }
    await bumpApiKeysVersion(tx);
    return true;
  });
}

/**
 * Reads one row by primary key: cheap enough for the key registry's
 * four polls a second per process.
 */
export async function selectApiKeysVersion(sql: Sql): Promise<number> {
  const [row] = await sql<Array<{ value: string }>>`
    SELECT value FROM meta WHERE name = 'api_keys_version'
  `;
  return Number(row.value);
}
