import { describe } from "node:test";

import {
  assertPostgresReachable,
  dropSchema,
  postgresUrlVariable,
  uniqueSchemaName,
  withSchemaParameter,
} from "./postgres-schema.js";
import { createTempStore } from "./server-process.js";

/** A store backend that the end-to-end suites run against. */
export type StoreKind = "sqlite" | "postgres";

export interface StoreVariant {
  kind: StoreKind;
  /** Why the suites of this kind are skipped, or undefined when they run. */
  skip?: string;
}

/** Returns KVSTREAM_TEST_POSTGRES_URL, or undefined when it is unset or empty. */
function postgresBaseUrl(): string | undefined {
  const url = process.env[postgresUrlVariable];
  return url === undefined || url === "" ? undefined : url;
}

/**
 * Lists every store kind with the reason it is skipped. SQLite always
 * runs. PostgreSQL runs when KVSTREAM_TEST_POSTGRES_URL is set.
 */
export function storeVariants(): StoreVariant[] {
  const postgresSkip =
    postgresBaseUrl() === undefined
      ? `${postgresUrlVariable} is not set`
      : undefined;
  return [{ kind: "sqlite" }, { kind: "postgres", skip: postgresSkip }];
}

/** Returns the store kinds whose suites run. */
export function storeKindsToRun(): StoreKind[] {
  return storeVariants()
    .filter((variant) => variant.skip === undefined)
    .map((variant) => variant.kind);
}

/**
 * Declares one suite per store kind, named `NAME [KIND]`, and runs `body`
 * inside each. A kind that does not run shows as one skipped suite with
 * the reason.
 */
export function forEachStore(
  name: string,
  body: (kind: StoreKind) => void,
): void {
  for (const variant of storeVariants()) {
    describe(`${name} [${variant.kind}]`, { skip: variant.skip ?? false }, () =>
      body(variant.kind),
    );
  }
}

/** A fresh, empty store of one kind. */
export interface TestStore {
  kind: StoreKind;
  /** The `--store` argument of `kvstream serve` and `kvstream keys`. */
  store: string;
  /** The SQLite file, for SQLite stores only. */
  file?: string;
  /** Deletes the SQLite file's folder or drops the PostgreSQL schema. */
  remove(): Promise<void>;
}

/**
 * Creates a store location of `kind` that no other test uses. For
 * PostgreSQL the location is KVSTREAM_TEST_POSTGRES_URL with a new schema
 * name, which the store creates when the server or `kvstream keys` first
 * opens it.
 */
export async function createTestStore(kind: StoreKind): Promise<TestStore> {
  if (kind === "sqlite") {
    const temp = await createTempStore();
    return { kind, store: temp.store, file: temp.file, remove: temp.remove };
  }

  const baseUrl = postgresBaseUrl();
  if (baseUrl === undefined) {
    throw new Error(
      `${postgresUrlVariable} is not set; set it to a PostgreSQL URL such as postgres://postgres@127.0.0.1:5432/test to run the postgres variants.`,
    );
  }
  const schema = uniqueSchemaName();
  const store = withSchemaParameter(baseUrl, schema);
  await assertPostgresReachable(baseUrl);
  return { kind, store, remove: () => dropSchema(baseUrl, schema) };
}
