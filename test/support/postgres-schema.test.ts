import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  redactPassword,
  uniqueSchemaName,
  withSchemaParameter,
} from "./postgres-schema.js";

describe("withSchemaParameter", () => {
  test("adds a query string", () => {
    assert.equal(
      withSchemaParameter("postgres://postgres@127.0.0.1:5432/test", "s1"),
      "postgres://postgres@127.0.0.1:5432/test?schema=s1",
    );
  });

  test("appends to an existing query", () => {
    assert.equal(
      withSchemaParameter("postgres://u@h/db?sslmode=disable", "s1"),
      "postgres://u@h/db?sslmode=disable&schema=s1",
    );
  });

  test("keeps parameter encoding", () => {
    assert.equal(
      withSchemaParameter("postgresql://u@h/db?options=-c%20a%3Db", "s1"),
      "postgresql://u@h/db?options=-c%20a%3Db&schema=s1",
    );
  });

  test("trailing separators not doubled", () => {
    assert.equal(
      withSchemaParameter("postgres://h/db?", "s1"),
      "postgres://h/db?schema=s1",
    );
    assert.equal(
      withSchemaParameter("postgres://h/db?a=1&", "s1"),
      "postgres://h/db?a=1&schema=s1",
    );
  });

  test("query goes before a fragment", () => {
    assert.equal(
      withSchemaParameter("postgres://h/db?a=1#top", "s1"),
      "postgres://h/db?a=1&schema=s1#top",
    );
  });

  test("existing schema rejected", () => {
    assert.throws(
      () => withSchemaParameter("postgres://h/db?schema=x", "s1"),
      /must not contain a schema parameter/,
    );
  });

  test("other schemes rejected", () => {
    assert.throws(
      () => withSchemaParameter("mysql://h/db", "s1"),
      /must start with postgres:\/\/ or postgresql:\/\//,
    );
  });

  test("text that is no URL rejected", () => {
    assert.throws(
      () => withSchemaParameter("127.0.0.1:5432", "s1"),
      /is not a valid URL/,
    );
  });
});

describe("redactPassword", () => {
  test("hides the password", () => {
    assert.equal(
      redactPassword("postgres://user:secret@h:5432/db"),
      "postgres://user:***@h:5432/db",
    );
  });

  test("leaves a URL without password", () => {
    assert.equal(
      redactPassword("postgres://user@h/db"),
      "postgres://user@h/db",
    );
  });
});

describe("uniqueSchemaName", () => {
  test("names differ and are plain identifiers", () => {
    const first = uniqueSchemaName();
    const second = uniqueSchemaName();

    assert.notEqual(first, second);
    assert.match(first, new RegExp(`^kvs_test_${process.pid}_[0-9a-f]{8}$`));
  });
});
