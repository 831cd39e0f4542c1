import WebSocket from "ws";

import { GeneratorLoadMeter } from "./generator-load.js";
import { LatencyHistogram } from "./histogram.js";
import type { RpcLoadResult, RpcLoadTask } from "./tasks.js";

const maxErrorSamples = 3;
/** Time to wait for responses still in flight when the run ends. */
const drainTimeoutMs = 2_000;
/** Open-loop schedule granularity; Node timers fire at most every ms. */
const tickMs = 1;

/** Builds the text of each request kind once per call, cheaply. */
class RequestWriter {
  private nextId = 1;
  private readonly namespaceJson: string;
  private readonly valueJson: string;
  private readonly weights: number[];
  private readonly total: number;

  constructor(private readonly task: RpcLoadTask) {
    this.namespaceJson = JSON.stringify(task.namespace);
    // A JSON string of n - 2 characters is n bytes as compact JSON.
    this.valueJson = JSON.stringify(
      "v".repeat(Math.max(0, task.valueBytes - 2)),
    );
    this.weights = [task.mix.get, task.mix.set, task.mix.list];
    this.total = this.weights.reduce((sum, weight) => sum + weight, 0);
    if (this.total <= 0) throw new Error("the operation mix has no weight");
  }

  next(): string {
    const id = this.nextId++;
    const key = `k${Math.floor(Math.random() * this.task.keys)}`;
    let pick = Math.random() * this.total;
    if (pick < this.weights[0]) {
      return `{"jsonrpc":"2.0","id":${id},"method":"kv/get","params":{"namespace":${this.namespaceJson},"key":"${key}"}}`;
    }
    pick -= this.weights[0];
    if (pick < this.weights[1]) {
      return `{"jsonrpc":"2.0","id":${id},"method":"kv/set","params":{"namespace":${this.namespaceJson},"key":"${key}","value":${this.valueJson}}}`;
    }
    return `{"jsonrpc":"2.0","id":${id},"method":"kv/list","params":{"namespace":${this.namespaceJson},"limit":${this.task.listLimit}}}`;
  }
}

type AnswerRecorder = (now: number, intendedAt: number, text: string) => void;

/**
 * One load connection. Responses come in request order, so a FIFO of
 * intended send times matches each response to its request.
 */
class LoadConnection {
  running = true;
  private readonly writer: RequestWriter;
  /** Intended send times (performance.now() ms) of unanswered requests. */
  private readonly inFlight: number[] = [];
  private inFlightHead = 0;
  /** Open loop: intended send times of requests waiting for the window. */
  private backlog: number[] = [];
  private backlogHead = 0;

  constructor(
    private readonly socket: WebSocket,
    private readonly task: RpcLoadTask,
    record: AnswerRecorder,
  ) {
    this.writer = new RequestWriter(task);
    socket.on("message", (data) => {
      const now = performance.now();
      if (this.inFlightHead === this.inFlight.length) return;
      const intendedAt = this.inFlight[this.inFlightHead++];
      record(now, intendedAt, data.toString());
      if (!this.running) return;
      if (task.rate === 0) this.send(performance.now());
      else if (this.backlogHead < this.backlog.length) {
        this.send(this.backlog[this.backlogHead++]);
      }
    });
  }

  get pending(): number {
    return this.inFlight.length - this.inFlightHead;
  }

  send(intendedAt: number): void {
    if (
      this.inFlightHead > 4096 &&
      this.inFlightHead * 2 > this.inFlight.length
    ) {
      this.inFlight.splice(0, this.inFlightHead);
      this.inFlightHead = 0;
    }
    this.inFlight.push(intendedAt);
    this.socket.send(this.writer.next());
  }

  /** Open loop: sends now if the window has room, else queues. */
  schedule(intendedAt: number): void {
    const waiting = this.backlogHead < this.backlog.length;
    if (!waiting && this.pending < this.task.pipeline) this.send(intendedAt);
    else this.backlog.push(intendedAt);
  }

  /** Removes and returns the intended times of requests never sent. */
  takeBacklog(): number[] {
    const rest = this.backlog.slice(this.backlogHead);
    this.backlog = [];
    this.backlogHead = 0;
    return rest;
  }
}

/** True when a response frame carries an error rather than a result. */
function isErrorResponse(text: string): boolean {
  // Responses start with {"jsonrpc":"2.0","id":<id>, then "result" or "error".
  const afterId = text.indexOf(",", 22);
  return text.startsWith('"error"', afterId + 1);
}

/**
 * Runs one process's share of a request load: `connections` WebSockets,
 * each with up to `pipeline` requests in flight. Responses on a
 * connection come in request order, so a FIFO of send times matches them.
 *
 * In the open loop, latency counts from the intended send time of the
 * fixed schedule, not from when the request left: a server that falls
 * behind makes later requests wait in the backlog, and that wait is
 * counted (no coordinated omission).
 */
export async function runRpcLoad(task: RpcLoadTask): Promise<RpcLoadResult> {
  const histogram = new LatencyHistogram();
  const meter = new GeneratorLoadMeter();
  const errorSamples: string[] = [];
  let errors = 0;
  let operations = 0;
  let unsent = 0;

  const sockets = await Promise.all(
    Array.from({ length: task.connections }, () => openSocket(task)),
  );

  const startAt = performance.now();
  const measureFrom = startAt + task.warmupMs;
  const endAt = measureFrom + task.durationMs;
  meter.start();

  const record: AnswerRecorder = (now, intendedAt, text) => {
    if (now < measureFrom || now > endAt) return;
    operations++;
    histogram.record((now - intendedAt) * 1000);
    if (isErrorResponse(text)) {
      errors++;
      if (errorSamples.length < maxErrorSamples) errorSamples.push(text);
    }
  };
  const connections = sockets.map(
    (socket) => new LoadConnection(socket, task, record),
  );

  if (task.rate === 0) {
    for (const connection of connections) {
      for (let sent = 0; sent < task.pipeline; sent++) {
        connection.send(performance.now());
      }
    }
    await sleep(endAt - performance.now());
  } else {
    const interval = (1000 * task.connections) / task.rate;
    const nextIntended = connections.map(
      (_, index) => startAt + (interval * index) / connections.length,
    );
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = performance.now();
        if (now >= endAt) {
          clearInterval(timer);
          resolve();
          return;
        }
        connections.forEach((connection, index) => {
          while (nextIntended[index] <= now) {
            const intendedAt = nextIntended[index];
            nextIntended[index] += interval;
            connection.schedule(intendedAt);
          }
        });
      }, tickMs);
    });
  }

  for (const connection of connections) connection.running = false;
  const generator = meter.stop();
  // Requests that were due but never sent waited at least until the end;
  // counting them at that bound keeps a saturated server from looking fast.
  for (const connection of connections) {
    for (const intendedAt of connection.takeBacklog()) {
      if (intendedAt < measureFrom) continue;
      histogram.record((endAt - intendedAt) * 1000);
      unsent++;
    }
  }
  await waitUntil(
    () => connections.every((connection) => connection.pending === 0),
    drainTimeoutMs,
  );
  for (const socket of sockets) socket.terminate();

  return {
    operations,
    errors,
    errorSamples,
    seconds: task.durationMs / 1000,
    latency: histogram.snapshot(),
    unsent,
    generator,
  };
}

export function openSocket(task: {
  url: string;
  apiKey: string;
}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(task.url, {
      headers: { authorization: `Bearer ${task.apiKey}` },
      perMessageDeflate: false,
      maxPayload: 64 * 1024 * 1024,
    });
    socket.once("open", () => {
      socket.removeAllListeners("error");
      socket.on("error", () => {});
      resolve(socket);
    });
    socket.once("error", reject);
    socket.once("unexpected-response", (_request, response) => {
      reject(new Error(`HTTP ${response.statusCode} from ${task.url}`));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Polls `done` every 10 ms until it is true or `timeoutMs` passed. */
export async function waitUntil(
  done: () => boolean,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() >= deadline) return false;
    await sleep(10);
  }
  return true;
}
