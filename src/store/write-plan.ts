import { ErrorCode, RpcError } from "../protocol/errors.js";
import type { EntryRow } from "./rows.js";
import type { Change, WriteRequest } from "./store.js";

/** A key's stored state: `value` is null for a deleted key (a tombstone). */
export interface KeyState {
  value: string | null;
  version: number;
}

/** The writes of one group commit and the outcome of each request. */
export interface WritePlan {
  /** Per request: its changes, or the RpcError that rejects it. */
  outcomes: Array<Change[] | RpcError>;
  /** Every change of the commit, in request order. */
  changes: Change[];
  /** The last state of every key written, once per key. */
  entries: EntryRow[];
  /** Change of the live key count per namespace, zeros left out. */
  countDeltas: Map<string, number>;
  /** The new last seq of each tenant that got changes. */
  lastSeqs: Map<string, number>;
}

export function stateKey(namespace: string, key: string): string {
  return `${namespace}\u0000${key}`;
}

/**
 * Applies the requests of one group commit in order to the keys' stored
 * states, with the same rules as the SQLite store. A CAS mismatch or a
 * delete of a missing key rejects the whole request and leaves the state
 * as it was before it. No database access happens here, so a rejected
 * request needs no savepoint.
 */
export function planWrites(
  requests: readonly WriteRequest[],
  stored: ReadonlyMap<string, KeyState>,
  lastSeqs: ReadonlyMap<string, number>,
  timestamp: number,
): WritePlan {
  const state = new Map(stored);
  const seqs = new Map(lastSeqs);
  const entries = new Map<string, EntryRow>();
  const countDeltas = new Map<string, number>();
  const outcomes: Array<Change[] | RpcError> = [];
  const changes: Change[] = [];

  for (const request of requests) {
    const written = new Map<string, EntryRow>();
    const deltas = new Map<string, number>();
    const requestChanges: Change[] = [];
    let seq = seqs.get(request.tenantId) ?? 0;
    const current = (id: string) => written.get(id) ?? state.get(id);

    let failure: RpcError | undefined;
    for (const [index, operation] of request.operations.entries()) {
      const { namespace, key } = operation;
      const id = stateKey(namespace, key);
      const before = current(id);
      const live = before !== undefined && before.value !== null;
      const currentVersion = live ? before.version : 0;

      if (operation.cas !== undefined && operation.cas !== currentVersion) {
        failure = new RpcError(
          ErrorCode.CasConflict,
          `The key's version is ${currentVersion}, not ${operation.cas}; read it again and retry with its current version.`,
          { namespace, key, expected: operation.cas, actual: currentVersion },
        );
      } else if (operation.op === "delete" && !live) {
        failure = new RpcError(ErrorCode.NotFound, "The key does not exist.", {
          namespace,
          key,
        });
      }
      if (failure) {
        // kv/batch reports the failing operation's position in data.index.
        if (request.reportIndex) failure = failure.atIndex(index);
        break;
      }

      const version = (before?.version ?? 0) + 1;
      seq += 1;
      const value = operation.op === "set" ? operation.valueJson : null;
      written.set(id, {
        namespace,
        key,
        value,
        version,
        updated_by: request.actor,
        updated_at: timestamp,
      });
      let delta = 0;
      if (operation.op === "delete") delta = -1;
      else if (!live) delta = 1;
      if (delta !== 0) {
        deltas.set(namespace, (deltas.get(namespace) ?? 0) + delta);
      }
      const change: Change = {
        tenantId: request.tenantId,
        seq,
        op: operation.op,
        namespace,
        key,
        version,
        actor: request.actor,
        timestamp,
      };
      if (value !== null) change.valueJson = value;
      requestChanges.push(change);
    }

    if (failure) {
      outcomes.push(failure);
      continue;
    }
    for (const [id, entry] of written) {
      state.set(id, entry);
      entries.set(id, entry);
    }
    for (const [namespace, delta] of deltas) {
      countDeltas.set(namespace, (countDeltas.get(namespace) ?? 0) + delta);
    }
    seqs.set(request.tenantId, seq);
    outcomes.push(requestChanges);
    changes.push(...requestChanges);
  }

  for (const [namespace, delta] of countDeltas) {
    if (delta === 0) countDeltas.delete(namespace);
  }
  const changedSeqs = new Map<string, number>();
  for (const change of changes) changedSeqs.set(change.tenantId, change.seq);
  return {
    outcomes,
    changes,
    entries: [...entries.values()],
    countDeltas,
    lastSeqs: changedSeqs,
  };
}
