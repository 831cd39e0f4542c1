import { ErrorCode, RpcError } from "../protocol/errors.js";
import {
  checkJsonText,
  checkKey,
  checkNamespace,
  checkSchema,
} from "../protocol/params.js";
import { GetParams, methodsByName } from "../protocol/schemas.js";
import { entryResult } from "./entry-result.js";
import type { MethodHandler } from "./method.js";

export const getMethod: MethodHandler<GetParams> = {
  description: methodsByName.get("kv/get")!,
  reportsIndex: false,

  parse(params) {
    checkSchema(GetParams, params);
    const parsed = params as GetParams;
    checkJsonText(parsed, "params");
    checkNamespace(parsed.namespace);
    checkKey(parsed.key);
    return parsed;
  },

  namespaces: (parsed) => [parsed.namespace],

  async execute({ namespace, key }, { store }) {
    const entry = await store.get(namespace, key);
    if (!entry) {
      throw new RpcError(ErrorCode.NotFound, "The key does not exist.", {
        namespace,
        key,
      });
    }
    return entryResult(entry);
  },
};
