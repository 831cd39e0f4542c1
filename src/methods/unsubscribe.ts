import {
  checkJsonText,
  checkNamespace,
  checkSchema,
} from "../protocol/params.js";
import { methodsByName, UnsubscribeParams } from "../protocol/schemas.js";
import type { MethodHandler } from "./method.js";

export const unsubscribeMethod: MethodHandler<UnsubscribeParams> = {
  description: methodsByName.get("watch/unsubscribe")!,
  reportsIndex: false,

  parse(params) {
    checkSchema(UnsubscribeParams, params);
    const parsed = params as UnsubscribeParams;
    checkJsonText(parsed, "params");
    checkNamespace(parsed.namespace);
    return parsed;
  },

  namespaces: (parsed) => [parsed.namespace],

  async execute({ namespace }, { watch }) {
    return { namespace, unsubscribed: await watch!.unsubscribe(namespace) };
  },
};
