import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// Compiled tests live in dist/test/support, the compiled CLI in dist/src/cli.
const distRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const cliPath = join(distRoot, "src", "cli", "main.js");

const startTimeoutMs = 15_000;

export interface TempStore {
  dir: string;
  /** The `--store` argument for a SQLite file inside `dir`. */
  store: string;
  /** The SQLite file itself. */
  file: string;
  remove(): Promise<void>;
}

/** Creates a temporary folder for one SQLite store file. */
export async function createTempStore(): Promise<TempStore> {
  const dir = await mkdtemp(join(tmpdir(), "kvstream-test-"));
  const file = join(dir, "kvstream.db");
  return {
    dir,
    file,
    store: `sqlite:${file}`,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the compiled `kvstream` command to completion. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string>; input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

export interface CreatedKey {
  /** The secret API key, as `keys create` prints it. */
  key: string;
  /** The public key id, as `keys list` shows it and `updatedBy` records it. */
  id: string;
}

/** Creates an API key with the CLI on a store file. */
export async function createKey(
  store: string,
  options: {
    tenant: string;
    role?: "service" | "agent";
    scope?: string;
    name?: string;
  },
): Promise<CreatedKey> {
  const args = ["keys", "create", "--store", store, "--tenant", options.tenant];
  args.push("--role", options.role ?? "service");
  if (options.scope !== undefined) args.push("--scope", options.scope);
  if (options.name !== undefined) args.push("--name", options.name);

  const result = await runCli(args);
  if (result.code !== 0) {
    throw new Error(`keys create failed (${result.code}): ${result.stderr}`);
  }
  const key = result.stdout.trim();
  return { key, id: keyIdOf(key) };
}

/** Extracts the public id from an API key of the form `kvs_<id>_<secret>`. */
export function keyIdOf(key: string): string {
  const match = /^kvs_([a-z0-9]+)_[A-Za-z0-9_-]+$/.exec(key);
  if (!match) throw new Error(`not an API key: ${key}`);
  return match[1];
}

/** Revokes an API key with the CLI. */
export async function revokeKey(store: string, id: string): Promise<void> {
  const result = await runCli(["keys", "revoke", id, "--store", store]);
  if (result.code !== 0) {
    throw new Error(`keys revoke failed (${result.code}): ${result.stderr}`);
  }
}

export interface ServerProcess {
  process: ChildProcess;
  port: number;
  /** `ws://127.0.0.1:PORT/stream` */
  url: string;
  /** `http://127.0.0.1:PORT` */
  httpUrl: string;
  /** The demo key printed on the first start of an empty store, if any. */
  demoKey: string | undefined;
  /** Everything the server printed so far. */
  stdout(): string;
  stderr(): string;
  /** Sends SIGTERM and waits for the exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** Sends SIGKILL and waits for the exit. */
  kill(): Promise<void>;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `kvstream serve` as a child process on an ephemeral port and
 * resolves once it has printed its `listening on` line.
 */
export function startServer(options: {
  store: string;
  args?: string[];
  env?: Record<string, string>;
  /** Called with the child right after it is spawned, before it listens. */
  onSpawn?: (child: ChildProcess) => void;
}): Promise<ServerProcess> {
  const args = [
    cliPath,
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--store",
    options.store,
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, KVSTREAM_LOG_LEVEL: "warn", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  options.onSpawn?.(child);

  let stdout = "";
  let stderr = "";
  const exited = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
  }>((resolveExit) => {
    child.on("exit", (code, signal) => resolveExit({ code, signal }));
  });

  return new Promise((resolveStart, rejectStart) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      rejectStart(
        new Error(`server did not start in time\n${stdout}\n${stderr}`),
      );
    }, startTimeoutMs);

    child.stderr!.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      const match = /listening on ws:\/\/[^:]+:(\d+)\/stream/.exec(stdout);
      if (!match) return;

      clearTimeout(timer);
      const port = Number(match[1]);
      const demoKey = /\b(kvs_[a-z0-9]+_[A-Za-z0-9_-]+)/.exec(stdout)?.[1];
      resolveStart({
        process: child,
        port,
        url: `ws://127.0.0.1:${port}/stream`,
        httpUrl: `http://127.0.0.1:${port}`,
        demoKey,
        stdout: () => stdout,
        stderr: () => stderr,
        exited,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill("SIGTERM");
          }
          return (await exited).code;
        },
        kill: async () => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill("SIGKILL");
          }
          await exited;
        },
      });
    });

    child.on("exit", (code) => {
      clearTimeout(timer);
      rejectStart(
        new Error(`server exited with ${code} before listening\n${stderr}`),
      );
    });
  });
}
