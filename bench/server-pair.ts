import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { BenchClient } from "./bench-client.js";
import type { Target, TargetName } from "./scenarios.js";
import { launchServer, type LaunchedServer } from "./server-launch.js";

const distRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const cliPath = join(distRoot, "src", "cli", "main.js");
const referencePath = join(distRoot, "bench", "reference-server.js");

export interface ServerPairOptions {
  /** Directory for V8 CPU profiles of both servers, if any. */
  profileDir?: string;
  /** False to let the reference server write each frame at once. */
  referenceCoalesce: boolean;
}

/**
 * The reference server and kvstream on a fresh SQLite file in its own
 * temporary directory, each with a connection for the coordinator.
 */
export class ServerPair {
  private constructor(
    readonly targets: Target[],
    private readonly servers: LaunchedServer[],
    private readonly storeDir: string,
  ) {}

  static async start(options: ServerPairOptions): Promise<ServerPair> {
    const storeDir = await mkdtemp(join(tmpdir(), "kvstream-bench-"));
    const servers: LaunchedServer[] = [];
    const targets: Target[] = [];
    const pair = new ServerPair(targets, servers, storeDir);
    const nodeFlags = options.profileDir
      ? ["--cpu-prof", "--cpu-prof-dir", resolve(options.profileDir)]
      : [];
    try {
      const reference = await launchServer({
        script: referencePath,
        args: options.referenceCoalesce ? ["0"] : ["0", "--no-coalesce"],
        nodeFlags,
      });
      servers.push(reference);
      const kvstream = await launchServer({
        script: cliPath,
        args: [
          "serve",
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          "--store",
          `sqlite:${join(storeDir, "kvstream.db")}`,
        ],
        nodeFlags,
      });
      servers.push(kvstream);
      if (!kvstream.demoKey) {
        throw new Error("kvstream did not print a key for its fresh store");
      }

      const keys: Array<[TargetName, LaunchedServer, string]> = [
        // The reference server does not check keys.
        ["reference", reference, "unused"],
        ["kvstream", kvstream, kvstream.demoKey],
      ];
      for (const [name, server, apiKey] of keys) {
        targets.push({
          name,
          url: server.url,
          apiKey,
          pid: server.pid,
          client: await BenchClient.connect(server.url, apiKey),
        });
      }
      return pair;
    } catch (error) {
      await pair.stop();
      throw error;
    }
  }

  /** Stops both servers and removes the store directory. */
  async stop(): Promise<void> {
    for (const target of this.targets) target.client.close();
    await Promise.all(this.servers.map((server) => server.stop()));
    await rm(this.storeDir, { recursive: true, force: true });
  }
}
