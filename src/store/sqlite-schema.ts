import { randomBytes } from "node:crypto";

import type { Database } from "better-sqlite3";

/**
 * Schema migrations, applied in order. The applied count is kept in
 * SQLite's `user_version`, so a store records its schema version from the
 * first release on. Never edit a released step: append a new one.
 */
const migrations: ReadonlyArray<(db: Database) => void> = [
  (db) => {
    db.exec(`
      CREATE TABLE meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;

      -- value is NULL for a deleted key: the row keeps its version so that
      -- a version is never reused.
      CREATE TABLE entries (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT,
        version INTEGER NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, key)
      ) WITHOUT ROWID;

      -- Live key counts for kv/namespaces; a row exists only while > 0.
      CREATE TABLE namespace_counts (
        namespace TEXT PRIMARY KEY,
        live_keys INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE tenants (
        tenant_id TEXT PRIMARY KEY,
        last_seq INTEGER NOT NULL,
        oldest_seq INTEGER NOT NULL
      ) WITHOUT ROWID;

      -- The history behind watch/subscribe with fromSeq.
      CREATE TABLE changes (
        tenant_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        op TEXT NOT NULL,
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT,
        version INTEGER NOT NULL,
        actor TEXT NOT NULL,
        timestamp INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, seq)
      ) WITHOUT ROWID;

      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        tenant_id TEXT NOT NULL,
        role TEXT NOT NULL,
        scope TEXT,
        name TEXT,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
      );
    `);
    const insertMeta = db.prepare(
      "INSERT INTO meta (name, value) VALUES (?, ?)",
    );
    // NOTE: a copy of the file restored from a backup keeps this id; a
    // restore command should make a new one, since seqs then repeat.
    insertMeta.run("store_id", randomBytes(16).toString("base64url"));
    insertMeta.run("api_keys_version", "0");
  },
];

export const schemaVersion = migrations.length;

/**
 * Brings the schema up to date, one transaction per step. The version is
 * read again inside each transaction because the CLI and a server may open
 * a new file at the same moment.
 */
export function migrate(db: Database): void {
  for (;;) {
    const done = db
      .transaction(() => {
        const current = db.pragma("user_version", { simple: true }) as number;
        if (current > schemaVersion) {
          throw new Error(
            `The store file has schema version ${current}, newer than this kvstream supports (${schemaVersion}); upgrade kvstream.`,
          );
        }
        if (current === schemaVersion) return true;
        migrations[current](db);
        db.pragma(`user_version = ${current + 1}`);
        return false;
      })
      .immediate();
    if (done) return;
  }
}
