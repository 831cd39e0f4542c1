import {
  checkJsonText,
  checkNamespace,
  checkSchema,
} from "../protocol/params.js";
import { invalidParams } from "../protocol/errors.js";
import { methodsByName, SubscribeParams } from "../protocol/schemas.js";
import type { MethodHandler } from "./method.js";

export const subscribeMethod: MethodHandler<SubscribeParams> = {
  description: methodsByName.get("watch/subscribe")!,
  reportsIndex: false,

  parse(params) {
    checkSchema(SubscribeParams, params);
    const parsed = params as SubscribeParams;
    checkJsonText(parsed, "params");
    checkNamespace(parsed.namespace);
    if (parsed.storeId === "") {
      throw invalidParams(
        "Invalid parameter 'storeId': it is empty; pass the storeId of a subscribe result or omit it.",
      );
    }
    return parsed;
  },

  namespaces: (parsed) => [parsed.namespace],

  execute({ namespace, fromSeq, storeId }, { watch }) {
    return watch!.subscribe(namespace, fromSeq, storeId);
  },
};
