import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { ValueErrorType, type ValueError } from "@sinclair/typebox/errors";

import { actorProblem, keyProblem, prefixProblem } from "../names/key.js";
import { namespaceProblem } from "../names/namespace.js";
import {
  findInvalidJsonText,
  stringifyDeep,
  utf8Length,
} from "../names/text.js";
import { invalidParams, RpcError } from "./errors.js";

const compiledSchemas = new WeakMap<TSchema, TypeCheck<TSchema>>();

function compiled(schema: TSchema): TypeCheck<TSchema> {
  let check = compiledSchemas.get(schema);
  if (!check) {
    check = TypeCompiler.Compile(schema);
    compiledSchemas.set(schema, check);
  }
  return check;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function describeError(error: ValueError, where: string, schema: TSchema) {
  const path = error.path.slice(1).replaceAll("/", ".");
  const name = where === "" ? path : `${where}.${path}`;

  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      const allowed = Object.keys(schema.properties ?? {}).join(", ");
      return `Unknown parameter '${name}'; the allowed names are: ${allowed}.`;
    }
    case ValueErrorType.ObjectRequiredProperty:
      return `Missing required parameter '${name}'.`;
    case ValueErrorType.Union:
      return `Invalid parameter '${name}': expected a string or null.`;
    default:
      return `Invalid parameter '${name}': ${error.message.toLowerCase()}.`;
  }
}

/** Throws -32602 unless `value` is a JSON object. `where` names it in the message. */
export function checkObject(
  value: unknown,
  where: string,
): asserts value is Record<string, unknown> {
  if (!isPlainObject(value)) {
    throw invalidParams(
      `${where} must be an object with named members, not ${describeType(value)}.`,
    );
  }
}

/**
 * Validates `value` against a schema and throws -32602 naming the first
 * problem. `where` prefixes the names in the message, such as
 * `operations[2]`.
 */
export function checkSchema(schema: TSchema, value: unknown, where = ""): void {
  checkObject(value, where === "" ? "params" : where);
  const check = compiled(schema);
  if (check.Check(value)) return;

  const first = check.Errors(value).First();
  throw invalidParams(
    first ? describeError(first, where, schema) : "Invalid params.",
  );
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

/** Throws -32602 for a lone surrogate or a number that overflowed. */
export function checkJsonText(value: unknown, where: string): void {
  const problem = findInvalidJsonText(value, where);
  if (problem) throw invalidParams(`Invalid params: ${problem}.`);
}

export function checkNamespace(namespace: string, name = "namespace"): void {
  const problem = namespaceProblem(namespace);
  if (problem) {
    throw invalidParams(
      `Invalid ${name} '${shorten(namespace)}': it ${problem}.`,
    );
  }
}

export function checkKey(key: string, name = "key"): void {
  const problem = keyProblem(key);
  if (problem) {
    throw invalidParams(`Invalid ${name} '${shorten(key)}': it ${problem}.`);
  }
}

export function checkPrefix(prefix: string): void {
  const problem = prefixProblem(prefix);
  if (problem) {
    throw invalidParams(`Invalid prefix '${shorten(prefix)}': it ${problem}.`);
  }
}

export function checkActor(actor: string | undefined): void {
  if (actor === undefined) return;
  const problem = actorProblem(actor);
  if (problem) throw invalidParams(`Invalid actor: it ${problem}.`);
}

/**
 * Serialises a value once, as it will be stored and sent, and enforces the
 * size limit on that compact form.
 */
export function serializeValue(value: unknown, maxValueBytes: number): string {
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    text = stringifyDeep(value);
  }
  const size = utf8Length(text);
  if (size > maxValueBytes) {
    throw invalidParams(
      `The value is ${size} bytes as compact JSON, over the limit of ${maxValueBytes}; store a smaller value or split it across keys.`,
      { limit: maxValueBytes, size },
    );
  }
  return text;
}

/** Runs `check` on each entry, adding `data.index` to the error it throws. */
export function forEachEntry<T>(
  entries: readonly unknown[],
  check: (entry: unknown, index: number) => T,
): T[] {
  return entries.map((entry, index) => {
    try {
      return check(entry, index);
    } catch (error) {
      if (error instanceof RpcError) throw error.atIndex(index);
      throw error;
    }
  });
}

function shorten(text: string): string {
  const printable = JSON.stringify(text).slice(1, -1);
  return printable.length > 80 ? `${printable.slice(0, 77)}...` : printable;
}
