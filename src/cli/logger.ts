import pino, { type Logger } from "pino";

/**
 * Structured logs go to stderr as JSON lines, so stdout carries only what a
 * person or script reads: the ready line, a new key. Logs never contain an
 * API key or a stored value.
 */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: ["req.headers.authorization", "headers.authorization"],
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
