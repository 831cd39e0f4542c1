import { errorCatalog, ErrorCode } from "./errors.js";
import {
  ChangeNotification,
  DiscoverParams,
  methods,
  type MethodDescription,
} from "./schemas.js";
import type { TObject } from "@sinclair/typebox";

const catalogByCode = new Map(errorCatalog.map((entry) => [entry.code, entry]));

function describeMethod(method: MethodDescription) {
  const params = method.params as TObject;
  const required = new Set(params.required ?? []);
  return {
    name: method.name,
    summary: method.summary,
    paramStructure: "by-name",
    params: Object.entries(params.properties).map(([name, schema]) => ({
      name,
      required: required.has(name),
      schema,
    })),
    result: { name: "result", schema: method.result },
    errors: [...new Set(method.errors)].map((code) => ({
      code,
      message: catalogByCode.get(code)!.name,
      data: catalogByCode.get(code)!.description,
    })),
  };
}

/**
 * Builds the OpenRPC document of the API from the same schemas that
 * validate requests, so the two cannot drift.
 */
export function buildOpenRpcDocument(version: string) {
  return {
    openrpc: "1.3.2",
    info: {
      title: "kvstream",
      version,
      description:
        "Multi-tenant JSON key-value store with live watches. Connect to /stream with 'Authorization: Bearer <API_KEY>'; watch/* needs the WebSocket.",
    },
    methods: [
      ...methods.map(describeMethod),
      {
        name: "rpc.discover",
        summary: "Return this OpenRPC document.",
        paramStructure: "by-name",
        params: [],
        result: { name: "document", schema: { type: "object" } },
        errors: [
          {
            code: ErrorCode.InvalidParams,
            message: catalogByCode.get(ErrorCode.InvalidParams)!.name,
          },
        ],
      },
    ],
    components: {
      schemas: { DiscoverParams, ChangeNotification },
    },
    "x-notifications": [
      {
        name: "watch/change",
        summary:
          "Sent by the server for each change under a subscribed namespace, after it is durable.",
        params: ChangeNotification,
      },
    ],
  };
}
