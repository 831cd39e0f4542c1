import { spawn } from "node:child_process";
import WebSocket from "ws";
import { TestClient, type CloseInfo, type Message } from "./rpc-client.js";
import { cliPath } from "./server-process.js";

export function delay(ms: number): Promise<void> {
  return new Promise((resolveDelay) => setTimeout(resolveDelay, ms));
}

/** Rejects with an error naming `what` unless `promise` settles in time. */
export function withTimeout<T>(
  promise: Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves with the close code and reason, or rejects after `timeoutMs`. */
export function waitForClose(
  client: TestClient,
  timeoutMs: number,
): Promise<CloseInfo> {
  return withTimeout(client.closed, timeoutMs, "waiting for the close");
}

/** Waits until a change with a seq of at least `seq` has arrived. */
export function waitForSeq(
  client: TestClient,
  seq: number,
  timeoutMs = 5_000,
): Promise<void> {
  return client.waitFor(
    () => client.changes.some((change) => change.seq >= seq),
    timeoutMs,
  );
}

/** Returns the integers from `first` to `last`, both included. */
export function range(first: number, last: number): number[] {
  const numbers: number[] = [];
  for (let n = first; n <= last; n++) numbers.push(n);
  return numbers;
}

export function seqsOf(changes: Message[]): number[] {
  return changes.map((change) => change.seq);
}

/** Returns the index in `client.received` of the first matching frame, or -1. */
export function frameIndex(
  client: TestClient,
  matches: (frame: any) => boolean,
): number {
  return client.received.findIndex(
    (frame) => !Array.isArray(frame) && matches(frame),
  );
}

export function isChangeWithSeq(seq: number): (frame: any) => boolean {
  return (frame) => frame.method === "watch/change" && frame.params.seq === seq;
}

export function isResponseTo(id: number): (frame: any) => boolean {
  return (frame) => frame.method === undefined && frame.id === id;
}

/**
 * Clients opened by one test file. `closeAll` runs after each test, so a
 * failed assertion never leaves a socket open.
 */
export class ClientPool {
  private readonly clients: TestClient[] = [];

  async connect(
    url: string,
    options: Parameters<typeof TestClient.connect>[1] = {},
  ): Promise<TestClient> {
    const client = await TestClient.connect(url, options);
    this.clients.push(client);
    return client;
  }

  /**
   * Closes every client. A client whose close handshake does not finish
   * within 2 s is terminated.
   */
  async closeAll(): Promise<void> {
    const clients = this.clients.splice(0);
    await Promise.all(
      clients.map(async (client) => {
        if (client.socket.isPaused) client.socket.resume();
        try {
          await withTimeout(client.close(), 2_000, "closing a client");
        } catch {
          client.socket.terminate();
        }
      }),
    );
  }
}

export interface BoundedRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the command printed `listening on` and was killed for it. */
  listened: boolean;
  timedOut: boolean;
}

/**
 * Runs the compiled `kvstream` command and kills it after `timeoutMs`, or
 * as soon as it prints its `listening on` line. Tests use it where a
 * server is expected not to start, so that a wrong start cannot hang them.
 */
export function runCliBounded(
  args: string[],
  timeoutMs: number,
): Promise<BoundedRun> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env: { ...process.env, KVSTREAM_LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let listened = false;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);

    child.stderr.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      if (!listened && /listening on ws:/.test(stdout)) {
        listened = true;
        child.kill("SIGKILL");
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, stdout, stderr, listened, timedOut });
    });
  });
}

/**
 * Opens a raw WebSocket and resolves with the headers of the server's
 * upgrade response, for checks that the test client hides.
 */
export function upgradeHeaders(
  url: string,
  protocols: string[],
  headers: Record<string, string> = {},
): Promise<Record<string, string | string[] | undefined>> {
  return new Promise((resolveHeaders, reject) => {
    const socket = new WebSocket(url, protocols, {
      headers,
      perMessageDeflate: false,
    });
    let upgraded = false;
    socket.once("upgrade", (response) => {
      upgraded = true;
      resolveHeaders({ ...response.headers });
      socket.terminate();
    });
    // Terminating the socket during the handshake emits an error, which is
    // expected once the headers have arrived.
    socket.on("error", (error) => {
      if (!upgraded) reject(error);
    });
  });
}

export interface Write {
  namespace: string;
  key: string;
  value: unknown;
}

/** A write together with the kv/set result that acknowledged it. */
export interface AcknowledgedWrite extends Write {
  version: number;
  seq: number;
  updatedBy: string;
  updatedAt: number;
}

/**
 * Sends every write as kv/set without waiting for responses in between
 * (pipelining) and resolves with the acknowledgements in request order.
 */
export function setPipelined(
  client: TestClient,
  writes: Write[],
): Promise<AcknowledgedWrite[]> {
  return Promise.all(
    writes.map(async (write) => {
      const result = await client.call("kv/set", write);
      return {
        ...write,
        version: result.version,
        seq: result.seq,
        updatedBy: result.updatedBy,
        updatedAt: result.updatedAt,
      };
    }),
  );
}
