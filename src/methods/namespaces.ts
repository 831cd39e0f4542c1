import { invalidParams } from "../protocol/errors.js";
import {
  checkJsonText,
  checkNamespace,
  checkSchema,
} from "../protocol/params.js";
import { methodsByName, NamespacesParams } from "../protocol/schemas.js";
import { decodeCursor, encodeCursor } from "./cursor.js";
import type { MethodHandler } from "./method.js";

interface ParsedNamespaces {
  namespace: string;
  limit: number;
  afterNamespace: string | null;
}

export const namespacesMethod: MethodHandler<ParsedNamespaces> = {
  description: methodsByName.get("kv/namespaces")!,
  reportsIndex: false,

  parse(params) {
    checkSchema(NamespacesParams, params);
    const { namespace, limit = 1000, cursor } = params as NamespacesParams;
    checkJsonText(params, "params");
    checkNamespace(namespace);
    if (cursor === "") {
      throw invalidParams(
        "Invalid cursor: it is empty; pass null or omit it to start at the beginning.",
      );
    }
    const afterNamespace =
      cursor === undefined || cursor === null
        ? null
        : decodeCursor(cursor, ["namespaces", namespace]);
    return { namespace, limit, afterNamespace };
  },

  // A scoped key asking above its scope fails here rather than getting a
  // filtered list, so a listing never hides what it left out.
  namespaces: (parsed) => [parsed.namespace],

  async execute({ namespace, limit, afterNamespace }, { store }) {
    const page = await store.namespaces({ namespace, afterNamespace, limit });
    const last = page.items[page.items.length - 1];
    return {
      namespace,
      items: page.items,
      nextCursor:
        page.more && last
          ? encodeCursor(["namespaces", namespace, last.namespace])
          : null,
    };
  },
};
