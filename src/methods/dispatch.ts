import { canAccessNamespace } from "../auth/access.js";
import {
  ErrorCode,
  invalidParams,
  namespaceForbidden,
  RpcError,
  unauthenticated,
} from "../protocol/errors.js";
import type { Request } from "../protocol/envelope.js";
import { RawJson } from "../protocol/json-text.js";
import { batchMethod } from "./batch.js";
import { deleteMethod } from "./delete.js";
import { getMethod } from "./get.js";
import { listMethod } from "./list.js";
import type { MethodContext, MethodHandler } from "./method.js";
import { mgetMethod } from "./mget.js";
import { namespacesMethod } from "./namespaces.js";
import { setMethod } from "./set.js";
import { subscribeMethod } from "./subscribe.js";
import { unsubscribeMethod } from "./unsubscribe.js";

const handlers = new Map<string, MethodHandler<any>>(
  [
    getMethod,
    listMethod,
    namespacesMethod,
    mgetMethod,
    setMethod,
    deleteMethod,
    batchMethod,
    subscribeMethod,
    unsubscribeMethod,
  ].map((handler) => [handler.description.name, handler]),
);

export const writeMethodNames = new Set(
  [...handlers.values()]
    .filter((handler) => handler.description.writes)
    .map((handler) => handler.description.name),
);

export interface DispatchContext extends MethodContext {
  /** False once the key was revoked. */
  isKeyActive(): boolean;
  /** The OpenRPC document, serialised once. */
  openRpcDocument: RawJson;
}

function methodNotFound(method: string, overHttp: boolean): RpcError {
  if (overHttp && method.startsWith("watch/")) {
    return new RpcError(
      ErrorCode.MethodNotFound,
      `${method} needs a WebSocket; connect to /stream to watch.`,
    );
  }
  return new RpcError(
    ErrorCode.MethodNotFound,
    `Unknown method '${method}'; call rpc.discover for the list of methods.`,
  );
}

/**
 * Runs one request through the checks in the protocol's order: key,
 * method, role, params, namespace access, then the method itself.
 * Throws RpcError for every failure the client should see.
 */
export async function dispatch(
  request: Request,
  context: DispatchContext,
): Promise<unknown> {
  if (!context.isKeyActive()) throw unauthenticated();

  if (request.method === "rpc.discover") {
    const params = request.params;
    const isObject =
      params !== null && typeof params === "object" && !Array.isArray(params);
    if (!isObject || Object.keys(params).length > 0) {
      throw invalidParams(
        "rpc.discover takes no parameters; send {} or omit params.",
      );
    }
    return context.openRpcDocument;
  }

  const handler = handlers.get(request.method);
  const overHttp = context.watch === undefined;
  if (!handler || (handler.description.needsStream && overHttp)) {
    throw methodNotFound(request.method, overHttp);
  }
  if (handler.description.writes && context.key.role === "agent") {
    throw new RpcError(
      ErrorCode.ReadOnly,
      `This is an agent key, which may only read and watch; use a service key for ${request.method}.`,
    );
  }

  const parsed = handler.parse(request.params, context.limits);
  handler.namespaces(parsed).forEach((namespace, index) => {
    if (canAccessNamespace(context.key, namespace)) return;
    const error = namespaceForbidden();
    throw handler.reportsIndex ? error.atIndex(index) : error;
  });
  context.takeRateToken();
  return handler.execute(parsed, context);
}
