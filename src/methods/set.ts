import {
  checkActor,
  checkJsonText,
  checkKey,
  checkNamespace,
  checkSchema,
  serializeValue,
} from "../protocol/params.js";
import { methodsByName, SetParams } from "../protocol/schemas.js";
import type { MethodHandler } from "./method.js";

interface ParsedSet {
  namespace: string;
  key: string;
  valueJson: string;
  actor?: string;
  cas?: number;
}

export const setMethod: MethodHandler<ParsedSet> = {
  description: methodsByName.get("kv/set")!,
  reportsIndex: false,

  parse(params, limits) {
    checkSchema(SetParams, params);
    const { namespace, key, value, actor, cas } = params as SetParams;
    checkJsonText(params, "params");
    checkNamespace(namespace);
    checkKey(key);
    checkActor(actor);
    const valueJson = serializeValue(value, limits.maxValueBytes);
    return { namespace, key, valueJson, actor, cas };
  },

  namespaces: (parsed) => [parsed.namespace],

  async execute(parsed, { key: apiKey, store }) {
    const actor = parsed.actor ?? apiKey.id;
    const [change] = await store.write({
      tenantId: apiKey.tenantId,
      actor,
      reportIndex: false,
      operations: [
        {
          op: "set",
          namespace: parsed.namespace,
          key: parsed.key,
          valueJson: parsed.valueJson,
          cas: parsed.cas,
        },
      ],
    });
    return {
      namespace: change.namespace,
      key: change.key,
      version: change.version,
      updatedBy: change.actor,
      updatedAt: change.timestamp,
      seq: change.seq,
    };
  },
};
