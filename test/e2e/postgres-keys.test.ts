import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  connectAdmin,
  createTestSchema,
  skipWithoutPostgres,
  type TestSchema,
} from "../support/postgres-admin.js";
import { runCli } from "../support/server-process.js";

async function schemaExists(name: string): Promise<boolean> {
  const admin = connectAdmin();
  try {
    const rows = await admin`
      SELECT 1 FROM pg_namespace WHERE nspname = ${name}
    `;
    return rows.length > 0;
  } finally {
    await admin.end({ timeout: 1 });
  }
}

async function tableCount(name: string): Promise<number> {
  const admin = connectAdmin();
  try {
    const [row] = await admin<Array<{ tables: number }>>`
      SELECT count(*)::int AS tables FROM pg_tables WHERE schemaname = ${name}
    `;
    return row.tables;
  } finally {
    await admin.end({ timeout: 1 });
  }
}

const commands = [
  { name: "keys list", args: ["keys", "list"] },
  { name: "keys revoke", args: ["keys", "revoke", "abc123"] },
];

describe(
  "keys on a missing PostgreSQL store",
  {
    skip: skipWithoutPostgres,
  },
  () => {
    const schemas: TestSchema[] = [];

    after(async () => {
      for (const schema of schemas) await schema.drop();
    });

    for (const command of commands) {
      test(`${command.name} without the schema`, async () => {
        const schema = createTestSchema("nokeys");
        schemas.push(schema);

        const result = await runCli([...command.args, "--store", schema.store]);

        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, /No kvstream store at postgres:\/\//);
        assert.match(
          result.stderr,
          new RegExp(`the schema '${schema.name}' does not exist`),
        );
        assert.match(result.stderr, /start the server once to create it/);
        assert.equal(result.stdout, "");
        assert.equal(await schemaExists(schema.name), false, "no schema made");
      });

      test(`${command.name} in an empty schema`, async () => {
        const schema = createTestSchema("nokeys");
        schemas.push(schema);
        const admin = connectAdmin();
        try {
          await admin.unsafe(`CREATE SCHEMA "${schema.name}"`);
        } finally {
          await admin.end({ timeout: 1 });
        }

        const result = await runCli([...command.args, "--store", schema.store]);

        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, /contains no kvstream store/);
        assert.equal(result.stdout, "");
        assert.equal(await tableCount(schema.name), 0, "no tables made");
      });
    }
  },
);

describe(
  "keys on an existing PostgreSQL store",
  {
    skip: skipWithoutPostgres,
  },
  () => {
    let schema: TestSchema;

    before(async () => {
      schema = createTestSchema("keys");
      const created = await runCli(["migrate", "--store", schema.store]);
      assert.equal(created.code, 0, created.stderr);
    });

    after(async () => {
      await schema?.drop();
    });

    test("keys list prints an empty list", async () => {
      const result = await runCli([
        "keys",
        "list",
        "--store",
        schema.store,
        "--json",
      ]);

      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), []);
    });
  },
);
