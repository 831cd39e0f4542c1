import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { OptionalKind, type TObject, type TSchema } from "@sinclair/typebox";

import { buildOpenRpcDocument } from "../../src/protocol/openrpc.js";
import { ErrorCode, errorCatalog } from "../../src/protocol/errors.js";
import { methods } from "../../src/protocol/schemas.js";

interface DocumentParam {
  name: string;
  required: boolean;
  schema: TSchema;
}

interface DocumentMethod {
  name: string;
  paramStructure: string;
  params: DocumentParam[];
  result: { name: string; schema: unknown };
  errors: Array<{ code: number; message: string }>;
}

const document = buildOpenRpcDocument("1.2.3") as unknown as {
  openrpc: string;
  info: { version: string };
  methods: DocumentMethod[];
};

function documentMethod(name: string): DocumentMethod {
  const found = document.methods.find((method) => method.name === name);
  assert.ok(found, `${name} missing from the OpenRPC document`);
  return found;
}

/** Required and optional parameters of each method, as the protocol defines them. */
const expectedParams: Record<
  string,
  { required: string[]; optional: string[] }
> = {
  "kv/get": { required: ["namespace", "key"], optional: [] },
  "kv/list": {
    required: ["namespace"],
    optional: ["prefix", "limit", "cursor"],
  },
  "kv/namespaces": { required: ["namespace"], optional: ["limit", "cursor"] },
  "kv/mget": { required: ["keys"], optional: [] },
  "kv/set": {
    required: ["namespace", "key", "value"],
    optional: ["actor", "cas"],
  },
  "kv/delete": { required: ["namespace", "key"], optional: ["actor", "cas"] },
  "kv/batch": { required: ["operations"], optional: ["actor"] },
  "watch/subscribe": {
    required: ["namespace"],
    optional: ["fromSeq", "storeId"],
  },
  "watch/unsubscribe": { required: ["namespace"], optional: [] },
};

describe("buildOpenRpcDocument", () => {
  test("document header and version", () => {
    assert.equal(typeof document.openrpc, "string");
    assert.equal(document.info.version, "1.2.3");
  });

  test("every method appears once", () => {
    for (const method of methods) {
      const matches = document.methods.filter(
        (entry) => entry.name === method.name,
      );
      assert.equal(matches.length, 1, method.name);
    }
  });

  test("rpc.discover appears", () => {
    const discover = documentMethod("rpc.discover");
    assert.equal(discover.paramStructure, "by-name");
    assert.deepEqual(discover.params, []);
  });

  test("every method is by-name", () => {
    for (const method of document.methods) {
      assert.equal(method.paramStructure, "by-name", method.name);
    }
  });

  test("params match the schema", () => {
    for (const method of methods) {
      const schema = method.params as TObject;
      const params = documentMethod(method.name).params;
      assert.deepEqual(
        params.map((param) => param.name),
        Object.keys(schema.properties),
        method.name,
      );
      for (const param of params) {
        const property = schema.properties[param.name];
        assert.equal(
          param.schema,
          property,
          `${method.name} ${param.name} schema`,
        );
        const optional =
          (property as unknown as Record<symbol, unknown>)[OptionalKind] ===
          "Optional";
        assert.equal(
          param.required,
          !optional,
          `${method.name} ${param.name} required`,
        );
      }
    }
  });

  test("required flags match the protocol", () => {
    assert.deepEqual(
      methods.map((method) => method.name).sort(),
      Object.keys(expectedParams).sort(),
    );
    for (const [name, expected] of Object.entries(expectedParams)) {
      const params = documentMethod(name).params;
      const required = params
        .filter((param) => param.required)
        .map((param) => param.name);
      const optional = params
        .filter((param) => !param.required)
        .map((param) => param.name);
      assert.deepEqual(
        required.sort(),
        [...expected.required].sort(),
        `${name} required`,
      );
      assert.deepEqual(
        optional.sort(),
        [...expected.optional].sort(),
        `${name} optional`,
      );
    }
  });

  test("result schema of each method", () => {
    for (const method of methods) {
      assert.equal(
        documentMethod(method.name).result.schema,
        method.result,
        method.name,
      );
    }
  });

  test("errors exist in the catalog", () => {
    const catalog = new Map(
      errorCatalog.map((entry) => [entry.code as number, entry]),
    );
    for (const method of document.methods) {
      for (const error of method.errors) {
        const entry = catalog.get(error.code);
        assert.ok(entry, `${method.name} lists unknown code ${error.code}`);
        assert.equal(error.message, entry.name, `${method.name} ${error.code}`);
      }
    }
  });

  test("errors match the method description", () => {
    for (const method of methods) {
      const codes = documentMethod(method.name).errors.map(
        (error) => error.code,
      );
      assert.deepEqual(
        [...codes].sort(),
        [...new Set(method.errors)].sort(),
        method.name,
      );
      assert.equal(
        new Set(codes).size,
        codes.length,
        `${method.name} repeats a code`,
      );
    }
  });

  test("errors each method can return", () => {
    for (const method of methods) {
      const codes = documentMethod(method.name).errors.map(
        (error) => error.code,
      );
      assert.ok(
        codes.includes(ErrorCode.InvalidParams),
        `${method.name} -32602`,
      );
      assert.ok(
        codes.includes(ErrorCode.Unauthorized),
        `${method.name} -32003`,
      );
      if (method.writes) {
        assert.ok(codes.includes(ErrorCode.ReadOnly), `${method.name} -32005`);
        assert.ok(
          codes.includes(ErrorCode.CasConflict),
          `${method.name} -32002`,
        );
        assert.ok(
          codes.includes(ErrorCode.StoreUnavailable),
          `${method.name} -32001`,
        );
      }
    }
    const get = documentMethod("kv/get").errors.map((error) => error.code);
    assert.ok(get.includes(ErrorCode.NotFound));
    const remove = documentMethod("kv/delete").errors.map(
      (error) => error.code,
    );
    assert.ok(remove.includes(ErrorCode.NotFound));
    const batch = documentMethod("kv/batch").errors.map((error) => error.code);
    assert.ok(batch.includes(ErrorCode.NotFound));
    const subscribe = documentMethod("watch/subscribe").errors.map(
      (error) => error.code,
    );
    assert.ok(subscribe.includes(ErrorCode.HistoryCompacted));
    assert.ok(subscribe.includes(ErrorCode.RateLimited));
  });

  test("write flags of methods", () => {
    const writes = methods
      .filter((method) => method.writes)
      .map((method) => method.name);
    assert.deepEqual(writes.sort(), ["kv/batch", "kv/delete", "kv/set"]);
  });

  test("catalog codes are unique", () => {
    const codes = errorCatalog.map((entry) => entry.code);
    assert.equal(new Set(codes).size, codes.length);
    assert.deepEqual([...codes].sort(), Object.values(ErrorCode).sort());
  });

  test("document survives JSON", () => {
    const copy = JSON.parse(JSON.stringify(document));
    const set = copy.methods.find(
      (method: DocumentMethod) => method.name === "kv/set",
    );
    assert.ok(set);
    const cas = set.params.find((param: DocumentParam) => param.name === "cas");
    assert.equal(cas.required, false);
    assert.equal(cas.schema.type, "integer");
    assert.equal(cas.schema.minimum, 0);
  });
});
