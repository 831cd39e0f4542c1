import { isWithin, tenantOf } from "../names/namespace.js";
import type { ApiKeyRecord } from "./api-key.js";

/** True when the key's tenant and scope cover the namespace. */
export function canAccessNamespace(
  key: ApiKeyRecord,
  namespace: string,
): boolean {
  if (tenantOf(namespace) !== key.tenantId) return false;
  return key.scope === null || isWithin(namespace, key.scope);
}
