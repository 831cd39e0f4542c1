import { invalidParams } from "../protocol/errors.js";
import {
  checkActor,
  checkObject,
  checkJsonText,
  checkKey,
  checkNamespace,
  checkSchema,
  forEachEntry,
  serializeValue,
} from "../protocol/params.js";
import {
  BatchDeleteOperation,
  BatchParamsEnvelope,
  maxBatchOperations,
  BatchSetOperation,
  methodsByName,
} from "../protocol/schemas.js";
import type { WriteOperation } from "../store/store.js";
import type { MethodHandler } from "./method.js";

interface ParsedBatch {
  operations: WriteOperation[];
  actor?: string;
}

function parseOperation(
  operation: unknown,
  index: number,
  maxValueBytes: number,
): WriteOperation {
  const where = `operations[${index}]`;
  const op = (operation as { op?: unknown } | null)?.op;
  if (op === "set") {
    checkSchema(BatchSetOperation, operation, where);
    const { namespace, key, value, cas } = operation as BatchSetOperation;
    checkJsonText(operation, where);
    checkNamespace(namespace, `${where}.namespace`);
    checkKey(key, `${where}.key`);
    const valueJson = serializeValue(value, maxValueBytes);
    return { op: "set", namespace, key, valueJson, cas };
  }
  if (op === "delete") {
    checkSchema(BatchDeleteOperation, operation, where);
    const { namespace, key, cas } = operation as BatchDeleteOperation;
    checkJsonText(operation, where);
    checkNamespace(namespace, `${where}.namespace`);
    checkKey(key, `${where}.key`);
    return { op: "delete", namespace, key, cas };
  }
  checkObject(operation, where);
  if (op === undefined) {
    throw invalidParams(
      `Missing required parameter '${where}.op'; use "set" or "delete".`,
    );
  }
  throw invalidParams(
    `Invalid parameter '${where}.op': it must be "set" or "delete".`,
  );
}

export const batchMethod: MethodHandler<ParsedBatch> = {
  description: methodsByName.get("kv/batch")!,
  reportsIndex: true,

  parse(params, limits) {
    checkSchema(BatchParamsEnvelope, params);
    const { operations, actor } = params as {
      operations: unknown[];
      actor?: string;
    };
    if (operations.length === 0 || operations.length > maxBatchOperations) {
      throw invalidParams(
        `operations has ${operations.length} entries; send 1 to ${maxBatchOperations}.`,
      );
    }
    if (actor !== undefined) {
      checkJsonText(actor, "actor");
      checkActor(actor);
    }
    return {
      actor,
      operations: forEachEntry(operations, (operation, index) =>
        parseOperation(operation, index, limits.maxValueBytes),
      ),
    };
  },

  namespaces: (parsed) => parsed.operations.map((o) => o.namespace),

  async execute(parsed, { key: apiKey, store }) {
    const changes = await store.write({
      tenantId: apiKey.tenantId,
      actor: parsed.actor ?? apiKey.id,
      reportIndex: true,
      operations: parsed.operations,
    });
    return {
      results: changes.map((change) => ({
        namespace: change.namespace,
        key: change.key,
        version: change.version,
        seq: change.seq,
      })),
    };
  },
};
