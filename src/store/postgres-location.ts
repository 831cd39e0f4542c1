/** A PostgreSQL store: a connection URL and the schema that contains its tables. */
export interface PostgresLocation {
  kind: "postgres";
  /** The connection URL without the `schema` parameter. */
  url: string;
  schema: string;
}

/**
 * Schema names are limited to unquoted-identifier characters, so that
 * they can be written into SQL without escaping and mean the same thing
 * quoted or not. PostgreSQL truncates identifiers past 63 bytes.
 */
const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Parses `postgres://...` or `postgresql://...`, taking the kvstream
 * parameter `?schema=NAME` out of the URL because the driver would send
 * it to the server as a setting. The default schema is `public`.
 */
export function parsePostgresLocation(text: string): PostgresLocation {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(
      `--store '${redactPassword(text)}' is not a valid URL; use postgres://USER@HOST:PORT/DATABASE?schema=NAME.`,
    );
  }
  const schema = url.searchParams.get("schema") ?? "public";
  if (!schemaPattern.test(schema)) {
    throw new Error(
      `--store schema '${schema}' is invalid; use 1 to 63 lowercase letters, digits or underscores, starting with a letter or underscore.`,
    );
  }
  url.searchParams.delete("schema");
  return { kind: "postgres", url: url.toString(), schema };
}

/** Replaces the password of a connection URL, for messages and logs. */
export function redactPassword(text: string): string {
  return text.replace(/^(postgres(?:ql)?:\/\/[^:/@]*:)[^@/]*@/, "$1***@");
}
