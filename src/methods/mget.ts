import { invalidParams } from "../protocol/errors.js";
import {
  checkJsonText,
  checkKey,
  checkNamespace,
  checkSchema,
  forEachEntry,
} from "../protocol/params.js";
import {
  maxMgetEntries,
  methodsByName,
  MgetEntry,
  MgetParamsEnvelope,
} from "../protocol/schemas.js";
import { entryResult } from "./entry-result.js";
import type { MethodHandler } from "./method.js";

export const mgetMethod: MethodHandler<MgetEntry[]> = {
  description: methodsByName.get("kv/mget")!,
  reportsIndex: true,

  parse(params) {
    checkSchema(MgetParamsEnvelope, params);
    const { keys } = params as { keys: unknown[] };
    if (keys.length === 0 || keys.length > maxMgetEntries) {
      throw invalidParams(
        `keys has ${keys.length} entries; send 1 to ${maxMgetEntries}.`,
      );
    }
    return forEachEntry(keys, (entry, index) => {
      checkSchema(MgetEntry, entry, `keys[${index}]`);
      const parsed = entry as MgetEntry;
      checkJsonText(parsed, `keys[${index}]`);
      checkNamespace(parsed.namespace, `keys[${index}].namespace`);
      checkKey(parsed.key, `keys[${index}].key`);
      return parsed;
    });
  },

  namespaces: (entries) => entries.map((entry) => entry.namespace),

  async execute(entries, { store }) {
    const found = await store.getMany(entries);
    return {
      items: found.map((entry) => (entry ? entryResult(entry) : null)),
    };
  },
};
