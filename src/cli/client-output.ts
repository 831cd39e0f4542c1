/**
 * Writes one JSON document: compact on one line when stdout is a pipe or
 * file, so that each line parses on its own (as jq reads it), and indented
 * when stdout is a terminal.
 */
export function printDocument(document: unknown): void {
  const text = process.stdout.isTTY
    ? JSON.stringify(document, null, 2)
    : JSON.stringify(document);
  process.stdout.write(`${text}\n`);
}
