import { InvalidArgumentError } from "commander";

import { UsageError } from "./exit-status.js";

/** Reads standard input to its end as UTF-8 text. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Parses JSON text, or throws a UsageError that names the input and ends
 * with `hint`, the next step for that input.
 */
export function parseJson(
  text: string,
  inputName: string,
  hint: string,
): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `${inputName} is not valid JSON (${(error as Error).message}); ${hint}`,
    );
  }
}

/** Returns a commander parser of whole numbers of at least `minimum`. */
export function integerParser(minimum: number): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
      throw new InvalidArgumentError("Use a whole number.");
    }
    if (value < minimum) {
      throw new InvalidArgumentError(`Use a number of at least ${minimum}.`);
    }
    return value;
  };
}
