import { randomBytes } from "node:crypto";

import postgres, { type Sql } from "postgres";

/** The database that PostgreSQL tests use, from KVSTREAM_TEST_POSTGRES_URL. */
export const postgresTestUrl = process.env.KVSTREAM_TEST_POSTGRES_URL;

/**
 * The `skip` option of PostgreSQL tests: a one-line reason when no
 * database is configured, false when the tests must run.
 */
export const skipWithoutPostgres: string | false = postgresTestUrl
  ? false
  : "KVSTREAM_TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)";

/** A schema made for one test run, with names unique to that run. */
export interface TestSchema {
  name: string;
  /** An application_name unique to this schema, for the store's sessions. */
  applicationName: string;
  /** The `--store` value: the test URL with `?schema=` and application_name. */
  store: string;
  /** The connection URL without kvstream's `schema` parameter. */
  url: string;
  drop(): Promise<void>;
}

/** Opens a connection for the test itself, outside any kvstream store. */
export function connectAdmin(): Sql {
  return postgres(postgresTestUrl!, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: "kvs_pg_test_admin" },
  });
}

/** An admin transaction that stays open and keeps its locks. */
export interface HeldLock {
  /** Commits the transaction, which releases its locks, and disconnects. */
  release(): Promise<void>;
}

/**
 * Runs `statement` in a new admin transaction and resolves once it has
 * run, with the transaction still open.
 */
export async function holdLock(statement: string): Promise<HeldLock> {
  const admin = connectAdmin();
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const lockTaken = new Promise<void>((resolve) => (locked = resolve));
  const holder = admin.begin(async (tx) => {
    await tx.unsafe(statement);
    locked();
    await released;
  });
  try {
    await Promise.race([lockTaken, holder]);
  } catch (error) {
    await admin.end({ timeout: 1 });
    throw error;
  }
  return {
    release: async () => {
      release();
      try {
        await holder;
      } finally {
        await admin.end({ timeout: 1 });
      }
    },
  };
}

/**
 * Names a new schema `kvs_pg_<label>_<random>`. The store creates it on
 * first open; drop() removes it and everything in it.
 */
export function createTestSchema(label: string): TestSchema {
  const suffix = randomBytes(6).toString("hex");
  const name = `kvs_pg_${label}_${suffix}`;
  const applicationName = `kvs_pg_${label}_${suffix}`;
  const url = new URL(postgresTestUrl!);
  url.searchParams.set("application_name", applicationName);
  const plainUrl = url.toString();
  url.searchParams.set("schema", name);
  return {
    name,
    applicationName,
    url: plainUrl,
    store: url.toString(),
    drop: async () => {
      const admin = connectAdmin();
      try {
        await admin.unsafe(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
      } finally {
        await admin.end({ timeout: 1 });
      }
    },
  };
}

/**
 * Terminates the sessions whose application_name is `applicationName`,
 * which only stores of one test use. Returns how many were terminated.
 */
export async function terminateSessions(
  applicationName: string,
): Promise<number> {
  const admin = connectAdmin();
  try {
    const rows = await admin`
      SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
      WHERE application_name = ${applicationName} AND pid <> pg_backend_pid()
    `;
    return rows.filter((row) => row.terminated).length;
  } finally {
    await admin.end({ timeout: 1 });
  }
}
