import type { RpcError } from "./errors.js";
import type { RequestId } from "./envelope.js";
import { stringifyWithRaw } from "./json-text.js";

export function resultResponse(id: RequestId, result: unknown): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${stringifyWithRaw(result)}}`;
}

export function errorResponse(id: RequestId, error: RpcError): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"error":${JSON.stringify(error.toJSON())}}`;
}

export function notification(method: string, params: unknown): string {
  return `{"jsonrpc":"2.0","method":${JSON.stringify(method)},"params":${stringifyWithRaw(params)}}`;
}
