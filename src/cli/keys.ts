import { existsSync } from "node:fs";

import { Command, Option } from "commander";

import {
  generateApiKey,
  hashApiKey,
  roles,
  type Role,
} from "../auth/api-key.js";
import {
  namespaceProblem,
  isValidTenantId,
  tenantOf,
} from "../names/namespace.js";
import { hasControlCharacter } from "../names/text.js";
import {
  openStore,
  parseStoreLocation,
  type OpenedStore,
} from "../store/open-store.js";
import { defaultConfig } from "../server/config.js";
import { keyStoreOption } from "./store-option.js";

const maxKeyNameLength = 256;

/** Opens the store for a key command; the CLI never takes the server lock. */
function openForKeys(
  location: string,
  mustExist: boolean,
): Promise<OpenedStore> {
  const parsed = parseStoreLocation(location);
  if (parsed.kind === "sqlite" && parsed.path === ":memory:") {
    throw new Error(
      "A memory: store exists only inside its server process; manage keys on a sqlite:PATH store.",
    );
  }
  return openStore(parsed, {
    historyChanges: defaultConfig.historyChanges,
    historySeconds: defaultConfig.historySeconds,
    exclusive: false,
    mustExist,
  });
}

async function withStore<T>(
  location: string,
  run: (opened: OpenedStore) => Promise<T>,
  { mustExist = true } = {},
): Promise<T> {
  const opened = await openForKeys(location, mustExist);
  try {
    return await run(opened);
  } finally {
    await opened.close();
  }
}

function validateNewKey(options: {
  tenant: string;
  role: string;
  scope?: string;
  name?: string;
}): void {
  if (!isValidTenantId(options.tenant)) {
    throw new Error(
      `--tenant '${options.tenant}' is not a tenant id: use 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit.`,
    );
  }
  if (options.scope !== undefined) {
    const problem = namespaceProblem(options.scope);
    if (problem) throw new Error(`--scope '${options.scope}' ${problem}.`);
    if (tenantOf(options.scope) !== options.tenant) {
      throw new Error(
        `--scope '${options.scope}' is outside tenant '${options.tenant}'; use a namespace that starts with tenant:${options.tenant}.`,
      );
    }
  }
  if (
    options.name !== undefined &&
    (options.name.length === 0 ||
      options.name.length > maxKeyNameLength ||
      hasControlCharacter(options.name))
  ) {
    throw new Error(
      `--name must be 1 to ${maxKeyNameLength} characters without control characters such as newlines.`,
    );
  }
}

function formatTime(ms: number | null): string {
  return ms === null ? "-" : new Date(ms).toISOString();
}

export function keysCommand(): Command {
  const keys = new Command("keys").description(
    "create, list and revoke API keys (also while a server runs on the same store)",
  );

  keys
    .command("create")
    .description(
      "create an API key and print it on stdout (shown only this once)",
    )
    .requiredOption("--tenant <tenantId>", "tenant the key belongs to")
    .addOption(
      new Option(
        "--role <role>",
        "service reads and writes; agent only reads and watches",
      )
        .choices(roles)
        .makeOptionMandatory(),
    )
    .option(
      "--scope <namespace>",
      "limit the key to this namespace of its tenant (tenant:<tenantId>/...) and those below it",
    )
    .option("--name <name>", "a label shown by keys list; none by default")
    .addOption(keyStoreOption())
    .action(async (options) => {
      validateNewKey(options);
      const { id, key } = generateApiKey();
      const location = parseStoreLocation(options.store);
      if (
        location.kind === "sqlite" &&
        location.path !== ":memory:" &&
        !existsSync(location.path)
      ) {
        process.stderr.write(
          `kvstream: creating a new store at ${location.path}\n`,
        );
      }
      await withStore(
        options.store,
        ({ store }) =>
          store.createApiKey({
            hash: hashApiKey(key),
            record: {
              id,
              tenantId: options.tenant,
              role: options.role as Role,
              scope: options.scope ?? null,
              name: options.name ?? null,
              createdAt: Date.now(),
              revokedAt: null,
            },
          }),
        { mustExist: false },
      );
      process.stdout.write(`${key}\n`);
    });

  keys
    .command("list")
    .description(
      "list API keys: id, tenant, role, scope, name, created, revoked; never the secret",
    )
    .option("--json", "print a JSON array instead of a table")
    .addOption(keyStoreOption())
    .action(async (options) => {
      const records = await withStore(options.store, ({ store }) =>
        store.listApiKeys(),
      );
      if (options.json) {
        const listed = records.map((record) => ({
          id: record.id,
          tenant: record.tenantId,
          role: record.role,
          scope: record.scope,
          name: record.name,
          createdAt: record.createdAt,
          revokedAt: record.revokedAt,
        }));
        process.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
        return;
      }
      const rows = [
        ["ID", "TENANT", "ROLE", "SCOPE", "NAME", "CREATED", "REVOKED"],
        ...records.map((record) => [
          record.id,
          record.tenantId,
          record.role,
          record.scope ?? "-",
          record.name ?? "-",
          formatTime(record.createdAt),
          formatTime(record.revokedAt),
        ]),
      ];
      const widths = rows[0].map((_, column) =>
        Math.max(...rows.map((row) => row[column].length)),
      );
      for (const row of rows) {
        const line = row
          .map((cell, column) => cell.padEnd(widths[column]))
          .join("  ");
        process.stdout.write(`${line.trimEnd()}\n`);
      }
    });

  keys
    .command("revoke")
    .description(
      "revoke an API key; open connections using it are closed within a second",
    )
    .argument("<id>", "the key id, as keys list shows it")
    .addOption(keyStoreOption())
    .action(async (id: string, options) => {
      const revokedBefore = await withStore(
        options.store,
        async ({ store }) => {
          const record = (await store.listApiKeys()).find(
            (key) => key.id === id,
          );
          if (!record) {
            throw new Error(
              `No API key has the id '${id}'; run 'kvstream keys list' to see the ids.`,
            );
          }
          if (record.revokedAt !== null) return record.revokedAt;
          await store.revokeApiKey(id, Date.now());
          return null;
        },
      );
      if (revokedBefore !== null) {
        process.stdout.write(
          `${id} was already revoked at ${formatTime(revokedBefore)}\n`,
        );
        return;
      }
      process.stdout.write(`revoked ${id}\n`);
    });

  return keys;
}
