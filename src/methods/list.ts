import {
  checkJsonText,
  checkNamespace,
  checkPrefix,
  checkSchema,
} from "../protocol/params.js";
import { ListParams, methodsByName } from "../protocol/schemas.js";
import { invalidParams } from "../protocol/errors.js";
import { RawJson } from "../protocol/json-text.js";
import { decodeCursor, encodeCursor } from "./cursor.js";
import type { MethodHandler } from "./method.js";

/** A page ends early once its items come to this many bytes of JSON. */
export const maxListPageBytes = 4 * 1024 * 1024;

interface ParsedList {
  namespace: string;
  prefix: string;
  limit: number;
  afterKey: string | null;
}

export const listMethod: MethodHandler<ParsedList> = {
  description: methodsByName.get("kv/list")!,
  reportsIndex: false,

  parse(params) {
    checkSchema(ListParams, params);
    const {
      namespace,
      prefix = "",
      limit = 1000,
      cursor,
    } = params as ListParams;
    checkJsonText(params, "params");
    checkNamespace(namespace);
    checkPrefix(prefix);
    if (cursor === "") {
      throw invalidParams(
        "Invalid cursor: it is empty; pass null or omit it to start at the beginning.",
      );
    }
    const afterKey =
      cursor === undefined || cursor === null
        ? null
        : decodeCursor(cursor, ["list", namespace, prefix]);
    return { namespace, prefix, limit, afterKey };
  },

  namespaces: (parsed) => [parsed.namespace],

  async execute({ namespace, prefix, limit, afterKey }, { store }) {
    const page = await store.list({
      namespace,
      prefix,
      afterKey,
      limit,
      maxBytes: maxListPageBytes,
    });
    const last = page.items[page.items.length - 1];
    return {
      namespace,
      items: page.items.map((entry) => ({
        key: entry.key,
        value: new RawJson(entry.valueJson),
        version: entry.version,
        updatedBy: entry.updatedBy,
        updatedAt: entry.updatedAt,
      })),
      nextCursor:
        page.more && last
          ? encodeCursor(["list", namespace, prefix, last.key])
          : null,
    };
  },
};
