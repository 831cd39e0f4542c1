import { hasControlCharacter, utf8Length } from "./text.js";

export const maxKeyBytes = 1024;
export const maxActorBytes = 256;

/** Checks a key. Returns why it is invalid, or undefined when valid. */
export function keyProblem(key: string): string | undefined {
  if (key === "") return "must not be empty";
  return prefixProblem(key);
}

/** Checks a kv/list prefix: the rules of a key, but it may be empty. */
export function prefixProblem(prefix: string): string | undefined {
  if (utf8Length(prefix) > maxKeyBytes) {
    return `is longer than ${maxKeyBytes} bytes of UTF-8`;
  }
  if (hasControlCharacter(prefix)) return "contains a control character";
  return undefined;
}

export function actorProblem(actor: string): string | undefined {
  const length = utf8Length(actor);
  if (length < 1 || length > maxActorBytes) {
    return `must be 1 to ${maxActorBytes} bytes of UTF-8`;
  }
  if (hasControlCharacter(actor)) return "contains a control character";
  return undefined;
}
