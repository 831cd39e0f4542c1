/**
 * JSON text that is already serialised, such as a stored value. The
 * response writer copies it verbatim instead of parsing and stringifying
 * it again.
 */
export class RawJson {
  constructor(readonly text: string) {}
}

/**
 * Serialises like JSON.stringify, but copies RawJson text as it is. Results
 * are small trees of plain objects, so a direct walk is cheaper than a
 * replacer with placeholders.
 */
export function stringifyWithRaw(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) {
    let text = "[";
    for (let index = 0; index < value.length; index++) {
      if (index > 0) text += ",";
      const item = value[index];
      text += item === undefined ? "null" : stringifyWithRaw(item);
    }
    return text + "]";
  }
  if (value !== null && typeof value === "object") {
    let text = "{";
    let first = true;
    for (const member of Object.keys(value)) {
      const item = (value as Record<string, unknown>)[member];
      if (item === undefined) continue;
      if (!first) text += ",";
      first = false;
      text += JSON.stringify(member) + ":" + stringifyWithRaw(item);
    }
    return text + "}";
  }
  return JSON.stringify(value);
}
