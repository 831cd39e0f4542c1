import type { Duplex } from "node:stream";

/** Frames larger than this are written at once, not held. */
const maxCoalescedFrameBytes = 16 * 1024;
/** Bytes one socket may hold back before they are written at once. */
const maxHeldBytes = 64 * 1024;

const scheduled: WriteCoalescer[] = [];
let releaseScheduled = false;

function releaseAll(): void {
  releaseScheduled = false;
  for (const writer of scheduled.splice(0)) writer.release();
}

/**
 * Holds a socket's small writes until the check phase of this event loop
 * turn. The frames queued in the meantime, such as the responses to a
 * burst of pipelined requests, then leave in one writev system call
 * instead of one call per frame. Frames and their order are unchanged.
 * Under the kv/get benchmark, one write system call
 * per frame took about 20 us on loopback (node --cpu-prof), more than the
 * SQLite read behind the frame.
 *
 * At most 64 KiB is held per socket, and `heldBytes` counts them, so
 * that a slow-consumer check can leave out bytes that are only waiting
 * for the end of the turn.
 */
export class WriteCoalescer {
  heldBytes = 0;
  private corked = false;

  constructor(private readonly socket: Duplex) {}

  /** Corks the socket, or releases it for a large frame; call before each write. */
  beforeWrite(bytes: number): void {
    if (
      bytes > maxCoalescedFrameBytes ||
      this.heldBytes + bytes > maxHeldBytes
    ) {
      // Writing what is held first keeps the frames in order.
      this.release();
      return;
    }
    if (!this.corked) {
      this.socket.cork();
      this.corked = true;
      scheduled.push(this);
      if (!releaseScheduled) {
        releaseScheduled = true;
        setImmediate(releaseAll);
      }
    }
    this.heldBytes += bytes;
  }

  /** Writes everything held, now. */
  release(): void {
    if (!this.corked) return;
    this.corked = false;
    this.heldBytes = 0;
    this.socket.uncork();
  }
}
