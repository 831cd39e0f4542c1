import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, describe, test } from "node:test";

import {
  connectAdmin,
  createTestSchema,
  skipWithoutPostgres,
  type TestSchema,
} from "../support/postgres-admin.js";
import {
  createTempStore,
  runCli,
  type TempStore,
} from "../support/server-process.js";

describe("kvstream migrate", () => {
  const temps: TempStore[] = [];
  const schemas: TestSchema[] = [];

  after(async () => {
    for (const temp of temps) await temp.remove();
    for (const schema of schemas) await schema.drop();
  });

  test("creates a SQLite store", async () => {
    const temp = await createTempStore();
    temps.push(temp);
    for (let run = 0; run < 2; run++) {
      const result = await runCli(["migrate", "--store", temp.store]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /the schema is up to date/);
    }
    assert.ok(existsSync(temp.file));
  });

  test("rejects a memory store", async () => {
    const result = await runCli(["migrate", "--store", "memory:"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /memory: store exists only inside/);
  });

  test("rejects an invalid schema name", async () => {
    const result = await runCli([
      "migrate",
      "--store",
      "postgres://postgres@127.0.0.1:1/test?schema=Bad-Name",
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /schema 'Bad-Name' is invalid/);
  });

  test("reports an unreachable database", async () => {
    const result = await runCli([
      "migrate",
      "--store",
      "postgres://kvstream:secret@127.0.0.1:1/test?schema=kvs_pg_none",
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Cannot open the PostgreSQL store/);
    assert.match(result.stderr, /ECONNREFUSED/);
    assert.doesNotMatch(result.stderr, /secret/, "the password is hidden");
  });

  test(
    "migrates a PostgreSQL schema",
    { skip: skipWithoutPostgres },
    async () => {
      const schema = createTestSchema("migrate");
      schemas.push(schema);
      for (let run = 0; run < 2; run++) {
        const result = await runCli(["migrate", "--store", schema.store]);
        assert.equal(result.code, 0, result.stderr);
      }
      const admin = connectAdmin();
      try {
        const rows = await admin.unsafe(
          `SELECT version FROM "${schema.name}".schema_migrations`,
        );
        assert.deepEqual(
          rows.map((row) => row.version),
          [1],
        );
      } finally {
        await admin.end({ timeout: 1 });
      }
    },
  );
});
