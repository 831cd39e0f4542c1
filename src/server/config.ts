/**
 * Every option of `kvstream serve`, its default and its bounds, in one
 * place. The CLI maps flags and KVSTREAM_* variables onto this; bad values
 * are rejected at start with the option's name.
 */
export interface ServerConfig {
  host: string;
  port: number;
  store: string;
  maxMessageBytes: number;
  maxValueBytes: number;
  maxOutboundBytes: number;
  maxSubscriptions: number;
  pingIntervalMs: number;
  historyChanges: number;
  historySeconds: number;
  /** Per API key on this process; 0 means no limit. */
  maxRequestsPerSecond: number;
  /** Largest SQLite file; 0 means no limit beyond the disk's. */
  maxStoreBytes: number;
  logLevel: string;
}

export const defaultConfig: ServerConfig = {
  host: "127.0.0.1",
  port: 7070,
  store: "sqlite:./data/kvstream.db",
  maxMessageBytes: 1024 * 1024,
  maxValueBytes: 64 * 1024,
  maxOutboundBytes: 8 * 1024 * 1024,
  maxSubscriptions: 64,
  pingIntervalMs: 30_000,
  historyChanges: 100_000,
  historySeconds: 24 * 60 * 60,
  maxRequestsPerSecond: 0,
  maxStoreBytes: 0,
  logLevel: "info",
};

export const logLevels = [
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
] as const;

interface IntegerBounds {
  min: number;
  max: number;
}

/** Bounds of each numeric option, as [option name, bounds]. */
export const integerOptions: Record<
  keyof Pick<
    ServerConfig,
    | "port"
    | "maxMessageBytes"
    | "maxValueBytes"
    | "maxOutboundBytes"
    | "maxSubscriptions"
    | "pingIntervalMs"
    | "historyChanges"
    | "historySeconds"
    | "maxRequestsPerSecond"
    | "maxStoreBytes"
  >,
  IntegerBounds
> = {
  port: { min: 0, max: 65_535 },
  maxMessageBytes: { min: 1024, max: 256 * 1024 * 1024 },
  maxValueBytes: { min: 1, max: 256 * 1024 * 1024 },
  maxOutboundBytes: { min: 1024, max: 4 * 1024 * 1024 * 1024 },
  maxSubscriptions: { min: 1, max: 100_000 },
  pingIntervalMs: { min: 100, max: 24 * 60 * 60 * 1000 },
  historyChanges: { min: 0, max: Number.MAX_SAFE_INTEGER },
  historySeconds: { min: 0, max: 100 * 365 * 24 * 60 * 60 },
  maxRequestsPerSecond: { min: 0, max: 10_000_000 },
  maxStoreBytes: { min: 0, max: Number.MAX_SAFE_INTEGER },
};

/** Parses an integer option value, naming the option in the error. */
export function parseIntegerOption(
  flag: string,
  text: string,
  bounds: IntegerBounds,
): number {
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) {
    throw new Error(`${flag} must be a whole number, not '${text}'.`);
  }
  if (value < bounds.min || value > bounds.max) {
    throw new Error(
      `${flag} must be from ${bounds.min} to ${bounds.max}, not ${value}.`,
    );
  }
  return value;
}

/** Rejects combinations of options that cannot work together. */
export function validateConfig(config: ServerConfig): void {
  if (config.maxValueBytes > config.maxMessageBytes) {
    throw new Error(
      `--max-value-bytes (${config.maxValueBytes}) must not exceed --max-message-bytes (${config.maxMessageBytes}): a value must fit in one message.`,
    );
  }
  if (!(logLevels as readonly string[]).includes(config.logLevel)) {
    throw new Error(
      `--log-level must be one of ${logLevels.join(", ")}, not '${config.logLevel}'.`,
    );
  }
}
