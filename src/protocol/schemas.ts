import { Type, type Static, type TSchema } from "@sinclair/typebox";

import { ErrorCode, type ErrorCodeValue } from "./errors.js";

/**
 * One TypeBox schema per method's params and result. The same schemas give
 * the compiled validators, the TypeScript types and the OpenRPC document.
 * String lengths in bytes, namespace syntax and value sizes are checked
 * after the schema, in params.ts, because JSON Schema counts UTF-16 units.
 */

const closed = { additionalProperties: false } as const;

const maxSafeInteger = Number.MAX_SAFE_INTEGER;

export const Namespace = Type.String({
  description:
    "tenant:<tenantId> followed by zero or more /segment; at most 512 bytes of UTF-8.",
  examples: ["tenant:acme/user:u1/preferences"],
});

export const Key = Type.String({
  description:
    "Non-empty, at most 1,024 bytes of UTF-8, no control characters; '/' is allowed.",
});

export const Value = Type.Unknown({
  description: "Any JSON value, null included; at most 64 KiB as compact JSON.",
});

export const Actor = Type.String({
  description:
    "Who made the change, 1 to 256 bytes; defaults to the API key's id.",
});

export const Cas = Type.Integer({
  minimum: 0,
  maximum: maxSafeInteger,
  description:
    "Write only if the key's current version equals this; 0 means the key must not exist.",
});

const Version = Type.Integer({
  minimum: 0,
  description: "Per-key version; never reused.",
});
const Seq = Type.Integer({
  minimum: 1,
  description: "Per-tenant change sequence number.",
});
const Timestamp = Type.Integer({
  description: "Milliseconds since the Unix epoch, set by the server.",
});

const Limit = Type.Integer({
  minimum: 1,
  maximum: 1000,
  description: "Maximum items in one page, 1 to 1,000; default 1,000.",
});

const Cursor = Type.Union([Type.String(), Type.Null()], {
  description:
    "nextCursor of the previous page; null or absent starts at the beginning.",
});

const NextCursor = Type.Union([Type.String(), Type.Null()], {
  description: "Pass back as cursor for the next page; null when no more.",
});

export const GetParams = Type.Object(
  { namespace: Namespace, key: Key },
  closed,
);

export const Entry = Type.Object({
  namespace: Namespace,
  key: Key,
  value: Value,
  version: Version,
  updatedBy: Type.String(),
  updatedAt: Timestamp,
});

export const ListParams = Type.Object(
  {
    namespace: Namespace,
    prefix: Type.Optional(
      Type.String({
        description:
          "Only keys starting with this; every character is literal. Default ''.",
      }),
    ),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  closed,
);

export const ListResult = Type.Object({
  namespace: Namespace,
  items: Type.Array(
    Type.Object({
      key: Key,
      value: Value,
      version: Version,
      updatedBy: Type.String(),
      updatedAt: Timestamp,
    }),
  ),
  nextCursor: NextCursor,
});

export const NamespacesParams = Type.Object(
  {
    namespace: Namespace,
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  closed,
);

export const NamespacesResult = Type.Object({
  namespace: Namespace,
  items: Type.Array(
    Type.Object({
      namespace: Namespace,
      keys: Type.Integer({ minimum: 1 }),
    }),
  ),
  nextCursor: NextCursor,
});

export const MgetEntry = Type.Object(
  { namespace: Namespace, key: Key },
  closed,
);

export const maxMgetEntries = 1000;
export const maxBatchOperations = 500;

/** The documented shape, with each entry's schema, for the OpenRPC document. */
export const MgetParams = Type.Object(
  {
    keys: Type.Array(MgetEntry, {
      minItems: 1,
      maxItems: maxMgetEntries,
      description: "1 to 1,000 entries of {namespace, key}.",
    }),
  },
  closed,
);

/**
 * The same params with entries left to the per-entry check, which reports
 * the failing entry's position in data.index.
 */
export const MgetParamsEnvelope = Type.Object(
  { keys: Type.Array(Type.Unknown()) },
  closed,
);

export const MgetResult = Type.Object({
  items: Type.Array(Type.Union([Entry, Type.Null()])),
});

export const SetParams = Type.Object(
  {
    namespace: Namespace,
    key: Key,
    value: Value,
    actor: Type.Optional(Actor),
    cas: Type.Optional(Cas),
  },
  closed,
);

export const SetResult = Type.Object({
  namespace: Namespace,
  key: Key,
  version: Version,
  updatedBy: Type.String(),
  updatedAt: Timestamp,
  seq: Seq,
});

export const DeleteParams = Type.Object(
  {
    namespace: Namespace,
    key: Key,
    actor: Type.Optional(Actor),
    cas: Type.Optional(Cas),
  },
  closed,
);

export const DeleteResult = Type.Object({
  namespace: Namespace,
  key: Key,
  version: Version,
  seq: Seq,
});

export const BatchSetOperation = Type.Object(
  {
    op: Type.Literal("set"),
    namespace: Namespace,
    key: Key,
    value: Value,
    cas: Type.Optional(Cas),
  },
  closed,
);

export const BatchDeleteOperation = Type.Object(
  {
    op: Type.Literal("delete"),
    namespace: Namespace,
    key: Key,
    cas: Type.Optional(Cas),
  },
  closed,
);

export const BatchParams = Type.Object(
  {
    operations: Type.Array(
      Type.Union([BatchSetOperation, BatchDeleteOperation]),
      {
        minItems: 1,
        maxItems: maxBatchOperations,
        description: "1 to 500 operations, applied in order, all or none.",
      },
    ),
    actor: Type.Optional(Actor),
  },
  closed,
);

/** BatchParams with operations left to the per-operation check. */
export const BatchParamsEnvelope = Type.Object(
  {
    operations: Type.Array(Type.Unknown()),
    actor: Type.Optional(Actor),
  },
  closed,
);

export const BatchResult = Type.Object({
  results: Type.Array(DeleteResult),
});

const StoreId = Type.String({
  description: "Identifies the store's history; made anew on restore.",
});

export const SubscribeParams = Type.Object(
  {
    namespace: Namespace,
    fromSeq: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: maxSafeInteger,
        description:
          "Replay retained changes after this seq, then continue live.",
      }),
    ),
    storeId: Type.Optional(StoreId),
  },
  closed,
);

export const SubscribeResult = Type.Object({
  namespace: Namespace,
  seq: Type.Integer({
    minimum: 0,
    description: "The tenant's latest seq when the subscription started.",
  }),
  storeId: StoreId,
});

export const UnsubscribeParams = Type.Object({ namespace: Namespace }, closed);

export const UnsubscribeResult = Type.Object({
  namespace: Namespace,
  unsubscribed: Type.Boolean(),
});

export const DiscoverParams = Type.Object({}, closed);

export const ChangeNotification = Type.Object({
  seq: Seq,
  op: Type.Union([Type.Literal("set"), Type.Literal("delete")]),
  namespace: Namespace,
  key: Key,
  value: Type.Optional(Value),
  version: Version,
  actor: Type.String(),
  timestamp: Timestamp,
  tenantId: Type.String(),
});

export type GetParams = Static<typeof GetParams>;
export type ListParams = Static<typeof ListParams>;
export type NamespacesParams = Static<typeof NamespacesParams>;
export type SetParams = Static<typeof SetParams>;
export type DeleteParams = Static<typeof DeleteParams>;
export type BatchSetOperation = Static<typeof BatchSetOperation>;
export type BatchDeleteOperation = Static<typeof BatchDeleteOperation>;
export type SubscribeParams = Static<typeof SubscribeParams>;
export type UnsubscribeParams = Static<typeof UnsubscribeParams>;
export type MgetEntry = Static<typeof MgetEntry>;

export interface MethodDescription {
  name: string;
  summary: string;
  params: TSchema;
  result: TSchema;
  errors: ErrorCodeValue[];
  /** Write methods are rejected for agent keys with -32005. */
  writes: boolean;
  /** watch/* needs a WebSocket; over POST /rpc it is -32601. */
  needsStream: boolean;
}

const common = [
  ErrorCode.InvalidParams,
  ErrorCode.Unauthorized,
  ErrorCode.StoreUnavailable,
  ErrorCode.RateLimited,
];

export const methods: readonly MethodDescription[] = [
  {
    name: "kv/get",
    summary: "Read one key.",
    params: GetParams,
    result: Entry,
    errors: [...common, ErrorCode.NotFound],
    writes: false,
    needsStream: false,
  },
  {
    name: "kv/list",
    summary:
      "List keys of exactly this namespace, in byte order of the key, page by page.",
    params: ListParams,
    result: ListResult,
    errors: common,
    writes: false,
    needsStream: false,
  },
  {
    name: "kv/namespaces",
    summary:
      "List the namespaces equal to or below this one that hold keys, with their key counts.",
    params: NamespacesParams,
    result: NamespacesResult,
    errors: common,
    writes: false,
    needsStream: false,
  },
  {
    name: "kv/mget",
    summary: "Read up to 1,000 keys; null where a key does not exist.",
    params: MgetParams,
    result: MgetResult,
    errors: common,
    writes: false,
    needsStream: false,
  },
  {
    name: "kv/set",
    summary: "Create or replace a value, optionally with compare-and-swap.",
    params: SetParams,
    result: SetResult,
    errors: [...common, ErrorCode.ReadOnly, ErrorCode.CasConflict],
    writes: true,
    needsStream: false,
  },
  {
    name: "kv/delete",
    summary: "Delete a key, optionally with compare-and-swap.",
    params: DeleteParams,
    result: DeleteResult,
    errors: [
      ...common,
      ErrorCode.ReadOnly,
      ErrorCode.CasConflict,
      ErrorCode.NotFound,
    ],
    writes: true,
    needsStream: false,
  },
  {
    name: "kv/batch",
    summary: "Apply up to 500 set and delete operations atomically, in order.",
    params: BatchParams,
    result: BatchResult,
    errors: [
      ...common,
      ErrorCode.ReadOnly,
      ErrorCode.CasConflict,
      ErrorCode.NotFound,
    ],
    writes: true,
    needsStream: false,
  },
  {
    name: "watch/subscribe",
    summary:
      "Receive watch/change notifications for a namespace and those below it, optionally replaying from a seq.",
    params: SubscribeParams,
    result: SubscribeResult,
    errors: [...common, ErrorCode.HistoryCompacted],
    writes: false,
    needsStream: true,
  },
  {
    name: "watch/unsubscribe",
    summary: "Stop the subscription on exactly this namespace.",
    params: UnsubscribeParams,
    result: UnsubscribeResult,
    errors: [
      ErrorCode.InvalidParams,
      ErrorCode.Unauthorized,
      ErrorCode.RateLimited,
    ],
    writes: false,
    needsStream: true,
  },
];

export const methodsByName = new Map(methods.map((m) => [m.name, m]));
