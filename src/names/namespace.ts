import { hasControlCharacter, utf8Length } from "./text.js";

export const maxNamespaceBytes = 512;

const tenantIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isValidTenantId(tenantId: string): boolean {
  return tenantIdPattern.test(tenantId);
}

/**
 * Checks a namespace of the form `tenant:<tenantId>` followed by zero or
 * more `/segment`. Returns why it is invalid, or undefined when valid.
 */
export function namespaceProblem(namespace: string): string | undefined {
  if (!namespace.startsWith("tenant:")) {
    return "must start with 'tenant:<tenantId>'";
  }
  if (utf8Length(namespace) > maxNamespaceBytes) {
    return `is longer than ${maxNamespaceBytes} bytes of UTF-8`;
  }

  const [tenantPart, ...segments] = namespace.split("/");
  const tenantId = tenantPart.slice("tenant:".length);
  if (!isValidTenantId(tenantId)) {
    return "has an invalid tenant id (1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit)";
  }
  for (const segment of segments) {
    if (segment === "") return "has an empty segment (no '//' or trailing '/')";
    if (segment === "." || segment === "..") {
      return "has a '.' or '..' segment";
    }
    if (hasControlCharacter(segment)) return "contains a control character";
  }
  return undefined;
}

/** Returns the tenant id of a namespace that passed namespaceProblem(). */
export function tenantOf(namespace: string): string {
  const end = namespace.indexOf("/");
  return namespace.slice("tenant:".length, end === -1 ? undefined : end);
}

/** True when `namespace` equals `ancestor` or lies below it. */
export function isWithin(namespace: string, ancestor: string): boolean {
  return (
    namespace === ancestor ||
    (namespace.startsWith(ancestor) && namespace[ancestor.length] === "/")
  );
}

/**
 * Lists a namespace and each of its ancestors up to `tenant:<id>`, deepest
 * first: `tenant:a/b/c`, `tenant:a/b`, `tenant:a`.
 */
export function namespaceAndAncestors(namespace: string): string[] {
  const result = [namespace];
  let end = namespace.lastIndexOf("/");
  while (end !== -1) {
    result.push(namespace.slice(0, end));
    end = namespace.lastIndexOf("/", end - 1);
  }
  return result;
}
