import type { Request } from "../protocol/envelope.js";

type Kind = "read" | "write";

/**
 * Orders the requests of one connection so that a client always reads its
 * own writes. Consecutive requests of the same kind run together (writes
 * join one group commit, reads run at once); a read waits for the writes
 * sent before it, and a write waits for the reads sent before it, so no
 * read sees a write that the client sent after it.
 */
export class RequestScheduler {
  private previousGroupsDone: Promise<unknown> | undefined;
  private group: Promise<unknown>[] = [];
  private groupKind: Kind | undefined;
  private groupPending = 0;

  constructor(private readonly isWrite: (method: string) => boolean) {}

  run<T>(request: Request, execute: () => Promise<T>): Promise<T> {
    const kind: Kind = this.isWrite(request.method) ? "write" : "read";
    if (kind !== this.groupKind) {
      if (this.groupPending > 0) {
        const earlier = this.previousGroupsDone;
        this.previousGroupsDone = Promise.allSettled(
          earlier ? [earlier, ...this.group] : this.group,
        );
      }
      this.group = [];
      this.groupKind = kind;
      this.groupPending = 0;
    }

    const waitFor = this.previousGroupsDone;
    const started = waitFor ? waitFor.then(execute) : execute();
    const group = this.group;
    group.push(started);
    this.groupPending++;
    const settle = () => {
      if (group !== this.group) return;
      this.groupPending--;
      if (this.groupPending === 0) {
        // Each group waited for the ones before it, so all have settled.
        this.previousGroupsDone = undefined;
        this.group = [];
      }
    };
    started.then(settle, settle);
    return started;
  }
}
