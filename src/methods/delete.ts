import {
  checkActor,
  checkJsonText,
  checkKey,
  checkNamespace,
  checkSchema,
} from "../protocol/params.js";
import { DeleteParams, methodsByName } from "../protocol/schemas.js";
import type { MethodHandler } from "./method.js";

export const deleteMethod: MethodHandler<DeleteParams> = {
  description: methodsByName.get("kv/delete")!,
  reportsIndex: false,

  parse(params) {
    checkSchema(DeleteParams, params);
    const parsed = params as DeleteParams;
    checkJsonText(parsed, "params");
    checkNamespace(parsed.namespace);
    checkKey(parsed.key);
    checkActor(parsed.actor);
    return parsed;
  },

  namespaces: (parsed) => [parsed.namespace],

  async execute(parsed, { key: apiKey, store }) {
    const [change] = await store.write({
      tenantId: apiKey.tenantId,
      actor: parsed.actor ?? apiKey.id,
      reportIndex: false,
      operations: [
        {
          op: "delete",
          namespace: parsed.namespace,
          key: parsed.key,
          cas: parsed.cas,
        },
      ],
    });
    return {
      namespace: change.namespace,
      key: change.key,
      version: change.version,
      seq: change.seq,
    };
  },
};
