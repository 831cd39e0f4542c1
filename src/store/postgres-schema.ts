import { randomBytes } from "node:crypto";

import type { Sql, TransactionSql } from "postgres";

/**
 * Schema migrations, applied in order, each recorded in
 * `schema_migrations`. Never edit a released step: append a new one.
 * Text columns that are compared or sorted use the "C" collation, which
 * orders by UTF-8 bytes as the protocol requires.
 */
const migrations: ReadonlyArray<(sql: TransactionSql) => Promise<unknown>> = [
  async (sql) => {
    await sql.unsafe(`
      CREATE TABLE meta (
        name text COLLATE "C" PRIMARY KEY,
        value text NOT NULL
      );

      -- value is NULL for a deleted key: the row keeps its version so that
      -- a version is never reused.
      CREATE TABLE entries (
        namespace text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        value text,
        version bigint NOT NULL,
        updated_by text NOT NULL,
        updated_at bigint NOT NULL,
        PRIMARY KEY (namespace, key)
      );

      -- Live key counts for kv/namespaces; a row exists only while > 0.
      CREATE TABLE namespace_counts (
        namespace text COLLATE "C" PRIMARY KEY,
        live_keys bigint NOT NULL
      );

      -- Writers lock a tenant's row to take its next seqs, so seqs are
      -- gapless and commit in seq order across processes.
      CREATE TABLE tenants (
        tenant_id text COLLATE "C" PRIMARY KEY,
        last_seq bigint NOT NULL,
        oldest_seq bigint NOT NULL
      );

      -- The history behind watch/subscribe with fromSeq, and the source
      -- from which every process feeds its watchers.
      CREATE TABLE changes (
        tenant_id text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        op text NOT NULL,
        namespace text COLLATE "C" NOT NULL,
        key text NOT NULL,
        value text,
        version bigint NOT NULL,
        actor text NOT NULL,
        timestamp bigint NOT NULL,
        PRIMARY KEY (tenant_id, seq)
      );

      CREATE TABLE api_keys (
        id text COLLATE "C" PRIMARY KEY,
        hash text COLLATE "C" NOT NULL UNIQUE,
        tenant_id text NOT NULL,
        role text NOT NULL,
        scope text,
        name text,
        created_at bigint NOT NULL,
        revoked_at bigint
      );
    `);
    // NOTE: a database restored from a backup keeps this id; a restore
    // should make a new one, since seqs then repeat.
    await sql`
      INSERT INTO meta (name, value) VALUES
        ('store_id', ${randomBytes(16).toString("base64url")}),
        ('api_keys_version', '0')
    `;
  },
];

export const postgresSchemaVersion = migrations.length;

/** Raised when a store must exist but its schema or tables are missing. */
export class MissingStoreError extends Error {}

/**
 * Creates the schema if missing and applies the missing migrations, all
 * in one transaction under an advisory lock on the schema's name, so that
 * processes starting together apply each step once. Returns the number of
 * steps applied. With `mustExist`, raises MissingStoreError and creates
 * nothing when the schema or its migrations table is missing.
 */
export async function migratePostgres(
  sql: Sql,
  schema: string,
  { mustExist = false } = {},
): Promise<number> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext('kvstream migrate'), hashtext(${schema}))`;
    if (mustExist) await requireStore(tx, schema);
    await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await tx.unsafe(`SET LOCAL search_path TO "${schema}"`);
    await tx.unsafe(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
      )
    `);
    const [row] = await tx<Array<{ current: number }>>`
      SELECT coalesce(max(version), 0)::int AS current FROM schema_migrations
    `;
    const current = row.current;
    if (current > postgresSchemaVersion) {
      throw new Error(
        `The PostgreSQL schema '${schema}' has schema version ${current}, newer than this kvstream supports (${postgresSchemaVersion}); upgrade kvstream.`,
      );
    }
    for (
      let version = current + 1;
      version <= postgresSchemaVersion;
      version++
    ) {
      await migrations[version - 1](tx);
      await tx`INSERT INTO schema_migrations (version) VALUES (${version})`;
    }
    return postgresSchemaVersion - current;
  });
}

async function requireStore(tx: TransactionSql, schema: string) {
  const [row] = await tx<Array<{ has_schema: boolean; has_store: boolean }>>`
    SELECT
      EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ${schema}) AS has_schema,
      to_regclass(${`"${schema}".schema_migrations`}) IS NOT NULL AS has_store
  `;
  if (!row.has_schema) {
    throw new MissingStoreError(`the schema '${schema}' does not exist`);
  }
  if (!row.has_store) {
    throw new MissingStoreError(
      `the schema '${schema}' contains no kvstream store (no schema_migrations table)`,
    );
  }
}
