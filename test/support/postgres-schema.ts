import { randomBytes } from "node:crypto";

import postgres from "postgres";

/** The environment variable that enables the postgres variants. */
export const postgresUrlVariable = "KVSTREAM_TEST_POSTGRES_URL";

/** Returns a schema name of the form `kvs_test_<pid>_<random>`. */
export function uniqueSchemaName(): string {
  return `kvs_test_${process.pid}_${randomBytes(4).toString("hex")}`;
}

/** Returns the URL with its password, if any, replaced by `***`. */
export function redactPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === "") return url;
    parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(not a valid URL)";
  }
}

/**
 * Adds `schema=NAME` to the query string of a PostgreSQL URL and keeps
 * every parameter the URL already has, in its original encoding.
 */
export function withSchemaParameter(baseUrl: string, schema: string): string {
  let parsed: URL;
  try {
    parsed = new URL(baseUrl);
  } catch {
    throw new Error(
      `${postgresUrlVariable} is not a valid URL; set it to a URL such as postgres://postgres@127.0.0.1:5432/test.`,
    );
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new Error(
      `${postgresUrlVariable} must start with postgres:// or postgresql://, got ${parsed.protocol}//.`,
    );
  }
  if (parsed.searchParams.has("schema")) {
    throw new Error(
      `${postgresUrlVariable} must not contain a schema parameter, because each suite adds a schema of its own; remove schema= from ${redactPassword(baseUrl)}.`,
    );
  }

  const hashIndex = baseUrl.indexOf("#");
  const body = hashIndex < 0 ? baseUrl : baseUrl.slice(0, hashIndex);
  const fragment = hashIndex < 0 ? "" : baseUrl.slice(hashIndex);
  let separator = "?";
  if (body.includes("?")) {
    separator = body.endsWith("?") || body.endsWith("&") ? "" : "&";
  }
  return `${body}${separator}schema=${encodeURIComponent(schema)}${fragment}`;
}

/**
 * Opens one connection to the database of `baseUrl`, runs `work` and
 * closes the connection. postgres.js sends the URL's query parameters,
 * other than its own options such as sslmode, to the server as settings.
 */
async function withConnection<T>(
  baseUrl: string,
  work: (sql: postgres.Sql) => Promise<T>,
): Promise<T> {
  const sql = postgres(baseUrl, {
    max: 1,
    connect_timeout: 5,
    onnotice: () => {},
    connection: {
      application_name: "kvstream-tests",
      // A backend of a killed server can hold a lock for a moment. A wait
      // longer than 10 s (the value is in ms) means something is stuck.
      lock_timeout: 10_000,
    },
  });
  try {
    return await work(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Runs `SELECT 1` on the database of `baseUrl`. When that fails, throws
 * an error that names the variable and the fix.
 */
export async function assertPostgresReachable(baseUrl: string): Promise<void> {
  try {
    await withConnection(baseUrl, (sql) => sql`SELECT 1`);
  } catch (error) {
    throw new Error(
      `PostgreSQL at ${redactPassword(baseUrl)} (from ${postgresUrlVariable}) is unreachable: ${(error as Error).message}. Start PostgreSQL, or unset ${postgresUrlVariable} to skip the postgres variants.`,
      { cause: error },
    );
  }
}

/** Drops the schema and everything in it, if it exists. */
export async function dropSchema(
  baseUrl: string,
  schema: string,
): Promise<void> {
  await withConnection(
    baseUrl,
    (sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`,
  );
}
