import type { KvError } from "./kv-error.js";

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** A change of the client's connection state, for status displays. */
export type StatusEvent =
  | { state: "connecting"; attempt: number }
  | { state: "open" }
  | {
      state: "reconnecting";
      /**
       * Reconnect attempts since the backoff last started over, from 1. It
       * starts over once a connection has received a message from the
       * server or stayed open for maxReconnectDelayMs.
       */
      attempt: number;
      /** Time in ms until the next attempt. */
      delayMs: number;
      /** The WebSocket close code of the drop; 1006 when none was sent. */
      closeCode: number;
      closeReason: string;
    }
  | {
      state: "closed";
      /** The error that stopped the client; absent after close(). */
      error?: KvError;
    };

export type StatusListener = (event: StatusEvent) => void;
