import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

const startTimeoutMs = 20_000;
const stopTimeoutMs = 10_000;

/** A server process started for a benchmark run. */
export interface LaunchedServer {
  process: ChildProcess;
  pid: number;
  url: string;
  /** The key printed on the first start of an empty kvstream store. */
  demoKey: string | undefined;
  /** Sends SIGTERM, waits for the exit, and SIGKILLs after 10 s. */
  stop(): Promise<void>;
}

/**
 * Starts `node [nodeFlags] script [args]` and resolves once it prints a
 * `listening on ws://...` line. Both kvstream and the reference server
 * print that line.
 */
export function launchServer(options: {
  script: string;
  args: string[];
  nodeFlags?: string[];
  env?: Record<string, string>;
}): Promise<LaunchedServer> {
  const child = spawn(
    process.execPath,
    [...(options.nodeFlags ?? []), options.script, ...options.args],
    {
      env: { ...process.env, KVSTREAM_LOG_LEVEL: "warn", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => resolve()),
  );
  let stdout = "";
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    // Keep only the tail: a long run could log a lot of warnings.
    stderr = (stderr + chunk).slice(-4096);
  });

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `${options.script} did not start within ${startTimeoutMs} ms\n${stderr}`,
        ),
      );
    }, startTimeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(
        new Error(
          `${options.script} exited with ${code} before listening\n${stderr}`,
        ),
      );
    });
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      if (stdout.length > 65_536) return;
      stdout += chunk;
      const match = /listening on (ws:\/\/\S+\/stream)/.exec(stdout);
      if (!match) return;
      clearTimeout(timer);
      resolve({
        process: child,
        pid: child.pid!,
        url: match[1],
        demoKey: /\b(kvs_[a-z0-9]+_[A-Za-z0-9_-]+)/.exec(stdout)?.[1],
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill("SIGTERM");
          const timeout = setTimeout(
            () => child.kill("SIGKILL"),
            stopTimeoutMs,
          );
          await exited;
          clearTimeout(timeout);
        },
      });
    });
  });
}

/** Resident memory of a process from /proc/PID/status, in bytes. */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS line in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/**
 * CPU time (user + system) a process has used, in ms, from
 * /proc/PID/stat. Linux reports it in clock ticks of 1/100 s on every
 * common architecture (USER_HZ), so the resolution is 10 ms.
 */
export function cpuMilliseconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name in field 2 may contain spaces; fields follow the ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const userTicks = Number(fields[11]);
  const systemTicks = Number(fields[12]);
  return (userTicks + systemTicks) * 10;
}
