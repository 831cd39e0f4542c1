import { Command, Option } from "commander";

import { generateApiKey, hashApiKey } from "../auth/api-key.js";
import {
  defaultConfig,
  integerOptions,
  logLevels,
  parseIntegerOption,
  validateConfig,
  type ServerConfig,
} from "../server/config.js";
import { KvServer } from "../server/kv-server.js";
import type { Store } from "../store/store.js";
import { packageVersion } from "../version.js";
import { createLogger } from "./logger.js";
import { storeOption } from "./store-option.js";

type IntegerOption = keyof typeof integerOptions;

const integerFlags: Array<[IntegerOption, string, string]> = [
  ["port", "--port <port>", "TCP port to listen on; 0 picks a free one"],
  [
    "maxMessageBytes",
    "--max-message-bytes <bytes>",
    "largest accepted WebSocket message or POST /rpc body, in bytes",
  ],
  [
    "maxValueBytes",
    "--max-value-bytes <bytes>",
    "largest value, as compact JSON, in bytes",
  ],
  [
    "maxOutboundBytes",
    "--max-outbound-bytes <bytes>",
    "unsent bytes queued for one connection before it is closed as a slow consumer (4008)",
  ],
  [
    "maxSubscriptions",
    "--max-subscriptions <count>",
    "maximum watch subscriptions per connection",
  ],
  [
    "pingIntervalMs",
    "--ping-interval-ms <ms>",
    "interval between WebSocket pings, in ms; a connection silent for two intervals is dropped",
  ],
  [
    "historyChanges",
    "--history-changes <count>",
    "changes per tenant kept for watch/subscribe fromSeq, at least",
  ],
  [
    "historySeconds",
    "--history-seconds <seconds>",
    "age of changes kept for watch/subscribe fromSeq, at least, in seconds",
  ],
  [
    "maxRequestsPerSecond",
    "--max-requests-per-second <count>",
    "requests per second allowed to one API key on this process (-32007 beyond); 0 for no limit",
  ],
  [
    "maxStoreBytes",
    "--max-store-bytes <bytes>",
    "largest size of the SQLite file; writes past it fail with -32001 while reads go on; 0 for no limit",
  ],
];

function envName(option: string): string {
  return `KVSTREAM_${option.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;
}

export function serveCommand(): Command {
  const command = new Command("serve")
    .description("serve the kvstream protocol over WebSocket and HTTP")
    .addOption(
      new Option("--host <host>", "interface to listen on")
        .env("KVSTREAM_HOST")
        .default(defaultConfig.host),
    )
    .addOption(storeOption())
    .addOption(
      new Option(
        "--log-level <level>",
        "minimum level of the JSON logs on stderr",
      )
        .choices(logLevels)
        .env("KVSTREAM_LOG_LEVEL")
        .default(defaultConfig.logLevel),
    );

  for (const [name, flags, description] of integerFlags) {
    const bounds = integerOptions[name];
    const flag = flags.split(" ")[0];
    command.addOption(
      new Option(flags, description)
        .env(envName(name))
        .default(defaultConfig[name])
        .argParser((text: string) =>
          parseIntegerOption(`${flag} (or ${envName(name)})`, text, bounds),
        ),
    );
  }

  return command.action(async (options: Record<string, unknown>) => {
    const config: ServerConfig = { ...defaultConfig };
    config.host = options.host as string;
    config.store = options.store as string;
    config.logLevel = options.logLevel as string;
    for (const [name, flags] of integerFlags) {
      const value = options[name];
      // Values from the environment arrive as text; flags are parsed already.
      config[name] =
        typeof value === "string"
          ? parseIntegerOption(
              `${flags.split(" ")[0]} (or ${envName(name)})`,
              value,
              integerOptions[name],
            )
          : (value as number);
    }
    validateConfig(config);
    await serve(config);
  });
}

async function serve(config: ServerConfig): Promise<void> {
  const logger = createLogger(config.logLevel);
  let server: KvServer;
  try {
    server = await KvServer.start(config, logger);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new Error(
        `Port ${config.port} on ${config.host} is in use; stop the process using it, or choose another port with --port or KVSTREAM_PORT (0 picks a free one).`,
      );
    }
    throw error;
  }
  const { port } = server.address;
  const url = `ws://${formatHost(config.host)}:${port}/stream`;

  const demoKey = await createDemoKeyIfEmpty(server.store);
  if (demoKey) printDemoKey(demoKey, url);

  logger.info(
    { url, store: config.store, version: packageVersion },
    "server started",
  );
  process.stdout.write(`listening on ${url}\n`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal; exiting at once");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "stopping");
    server.stop().then(
      () => {
        logger.info("stopped");
        logger.flush();
        process.exitCode = 0;
      },
      (error) => {
        logger.error({ err: error }, "stopping failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);

  // A stray rejection is a bug in one request's path, not a reason to drop
  // every connection: log it with its stack and keep serving.
  process.on("unhandledRejection", (reason) => {
    logger.error({ err: reason }, "unhandled promise rejection");
  });
  process.on("uncaughtException", (error) => {
    logger.fatal({ err: error }, "uncaught exception; exiting");
    logger.flush();
    process.exit(1);
  });
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * Creates the demo key if the store has no key. Of processes starting
 * together on one store, only one creates it.
 */
async function createDemoKeyIfEmpty(store: Store): Promise<string | null> {
  const { id, key } = generateApiKey();
  const created = await store.createFirstApiKey({
    hash: hashApiKey(key),
    record: {
      id,
      tenantId: "demo",
      role: "service",
      scope: null,
      name: "demo",
      createdAt: Date.now(),
      revokedAt: null,
    },
  });
  return created ? key : null;
}

function printDemoKey(key: string, url: string): void {
  const example = JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "kv/set",
    params: {
      namespace: "tenant:demo/user:u1/preferences",
      key: "theme",
      value: "dark",
    },
  });
  process.stdout.write(
    [
      "The store had no API keys, so a service key for tenant 'demo' was created.",
      "It is shown only this once:",
      "",
      `  ${key}`,
      "",
      "Connect and send a request:",
      "",
      `  npx -y wscat -c ${url} -H "Authorization: Bearer ${key}"`,
      `  > ${example}`,
      "",
      "",
    ].join("\n"),
  );
}
