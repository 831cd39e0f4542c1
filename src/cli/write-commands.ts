import type { Command } from "commander";

import type { BatchParams, SetParams } from "../client/types.js";
import {
  clientCommand,
  runWithClient,
  type ConnectionFlags,
} from "./client-connection.js";
import { integerParser, parseJson, readStdin } from "./client-input.js";
import { printDocument } from "./client-output.js";
import { UsageError } from "./exit-status.js";

interface WriteFlags extends ConnectionFlags {
  cas?: number;
  actor?: string;
}

const operationsExample = `'[{"op":"delete","namespace":"tenant:demo","key":"k"}]'`;

const casHelp =
  "write only if the key's current version is this; 0 means only if the key does not exist";
const actorHelp =
  "who made the change, recorded as updatedBy (default: the API key's id)";

export function setCommand(): Command {
  return clientCommand("set")
    .description(
      "create or replace a value and print {namespace, key, version, updatedBy, updatedAt, seq}",
    )
    .argument("<namespace>", "namespace, e.g. tenant:demo/user:u1")
    .argument("<key>", "key inside the namespace")
    .argument(
      "<value>",
      "the value as JSON, e.g. '{\"theme\":\"dark\"}' or '\"text\"'; '-' reads it from stdin",
    )
    .option("--string", "store <value> (or stdin) as a JSON string, unparsed")
    .option("--cas <version>", casHelp, integerParser(0))
    .option("--actor <name>", actorHelp)
    .action(
      async (
        namespace: string,
        key: string,
        valueArgument: string,
        flags: WriteFlags & { string?: boolean },
      ) => {
        const readValue = async (): Promise<unknown> => {
          const text =
            valueArgument === "-" ? await readStdin() : valueArgument;
          if (flags.string) return text;
          return parseJson(
            text,
            "<value>",
            "quote JSON strings, e.g. '\"dark\"', or pass --string to store text.",
          );
        };
        await runWithClient(
          "set",
          flags,
          async (client, value) => {
            const params: SetParams = { namespace, key, value };
            if (flags.cas !== undefined) params.cas = flags.cas;
            if (flags.actor !== undefined) params.actor = flags.actor;
            printDocument(await client.set(params));
          },
          readValue,
        );
      },
    );
}

export function deleteCommand(): Command {
  return clientCommand("delete")
    .description("delete a key and print {namespace, key, version, seq}")
    .argument("<namespace>", "namespace of the key")
    .argument("<key>", "key to delete")
    .option("--cas <version>", casHelp, integerParser(0))
    .option("--actor <name>", actorHelp)
    .action(async (namespace: string, key: string, flags: WriteFlags) => {
      await runWithClient("delete", flags, async (client) => {
        printDocument(
          await client.delete({
            namespace,
            key,
            ...(flags.cas === undefined ? {} : { cas: flags.cas }),
            ...(flags.actor === undefined ? {} : { actor: flags.actor }),
          }),
        );
      });
    });
}

export function batchCommand(): Command {
  return clientCommand("batch")
    .description(
      "apply 1 to 500 operations atomically, in order, and print one {namespace, key, version, seq} per operation",
    )
    .argument(
      "[operations]",
      'a JSON array of {"op":"set","namespace","key","value","cas"?} and {"op":"delete","namespace","key","cas"?}; omitted or \'-\' reads it from stdin',
    )
    .option("--actor <name>", actorHelp)
    .action(
      async (
        operationsArgument: string | undefined,
        flags: Omit<WriteFlags, "cas">,
      ) => {
        const readOperations = async (): Promise<BatchParams> => {
          const text =
            operationsArgument === undefined || operationsArgument === "-"
              ? await readStdin()
              : operationsArgument;
          const operations = parseJson(
            text,
            "[operations]",
            `pass a JSON array such as ${operationsExample}.`,
          );
          if (!Array.isArray(operations)) {
            throw new UsageError(
              `[operations] must be a JSON array of operations, e.g. ${operationsExample}`,
            );
          }
          const params: BatchParams = {
            operations: operations as BatchParams["operations"],
          };
          if (flags.actor !== undefined) params.actor = flags.actor;
          return params;
        };
        await runWithClient(
          "batch",
          flags,
          async (client, params) => {
            const result = await client.batch(params);
            for (const item of result.results) printDocument(item);
          },
          readOperations,
        );
      },
    );
}
