import type { Change } from "./store.js";

/** The reads of the change table that the feed needs from the store. */
export interface FeedSource {
  /** Reads a tenant's changes with afterSeq < seq <= uptoSeq, in seq order. */
  readChanges(
    tenantId: string,
    afterSeq: number,
    uptoSeq: number,
    limit: number,
  ): Promise<Change[]>;
  /** Reads the committed last seq of each of the tenants that exist. */
  lastSeqs(tenantIds: string[]): Promise<Map<string, number>>;
}

/** Changes read from the change table per query while catching up. */
const catchUpPageSize = 1000;

/**
 * Feeds committed changes to the commit listeners of one process, for
 * every tenant in seq order and each change once, whichever process made
 * it. A tenant is tracked from the first time this process requests its
 * latest seq or sees one of its changes. Changes arrive three ways: this
 * process's own commits (delivered at once when they are next in order),
 * notifications of a tenant's new last seq (NOTIFY from any process), and
 * catch-ups that compare every tracked tenant with the tenants table. A
 * gap between the last delivered seq and a known later seq is read from
 * the change table.
 */
export class ChangeFeed {
  /** The last seq delivered to the listeners, per tracked tenant. */
  private readonly delivered = new Map<string, number>();
  /** The highest seq known to be committed, per tracked tenant. */
  private readonly known = new Map<string, number>();
  /** Local changes that wait for earlier changes to be read, by tenant. */
  private readonly waiting = new Map<string, Map<number, Change>>();
  /** Tenants whose latest seq is being loaded, with seqs notified meanwhile. */
  private readonly loading = new Map<string, number>();
  private reading: Promise<void> | null = null;
  private readAgain = false;
  private failing = false;

  constructor(
    private readonly source: FeedSource,
    private readonly emit: (changes: Change[]) => void,
    /** Called once when reading changes fails, until a read succeeds. */
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Tenant ids this process tracks. */
  get tenants(): string[] {
    return [...this.delivered.keys()];
  }

  /**
   * Returns the last seq delivered for the tenant, and tracks the tenant
   * from its committed last seq when it is not tracked yet.
   */
  async latestSeq(
    tenantId: string,
    loadLastSeq: () => Promise<number>,
  ): Promise<number> {
    const tracked = this.delivered.get(tenantId);
    if (tracked !== undefined) return tracked;

    // Notifications that arrive during the read are kept in `loading`,
    // since the read may have missed their changes.
    if (!this.loading.has(tenantId)) this.loading.set(tenantId, 0);
    let lastSeq: number;
    let notified: number;
    try {
      lastSeq = await loadLastSeq();
    } finally {
      notified = this.loading.get(tenantId) ?? 0;
      this.loading.delete(tenantId);
    }
    const trackedMeanwhile = this.delivered.get(tenantId);
    if (trackedMeanwhile !== undefined) return trackedMeanwhile;

    this.delivered.set(tenantId, lastSeq);
    this.known.set(tenantId, Math.max(lastSeq, notified));
    if (notified > lastSeq) this.scheduleRead();
    return lastSeq;
  }

  /** Takes changes that this process committed, in seq order per tenant. */
  committed(changes: readonly Change[]): void {
    const byTenant = new Map<string, Change[]>();
    for (const change of changes) {
      const list = byTenant.get(change.tenantId) ?? [];
      list.push(change);
      byTenant.set(change.tenantId, list);
    }
    for (const [tenantId, list] of byTenant) {
      // No watcher of this process saw the tenant before, so its delivered
      // history starts here.
      if (!this.delivered.has(tenantId)) {
        this.delivered.set(tenantId, list[0].seq - 1);
        this.known.set(tenantId, list[0].seq - 1);
      }
      this.offer(tenantId, list);
    }
  }

  /** Takes a tenant's committed last seq, from a notification or a catch-up. */
  notified(tenantId: string, lastSeq: number): void {
    if (!this.delivered.has(tenantId)) {
      const loading = this.loading.get(tenantId);
      if (loading !== undefined) {
        this.loading.set(tenantId, Math.max(loading, lastSeq));
      }
      return;
    }
    if (lastSeq <= (this.known.get(tenantId) ?? 0)) return;
    this.known.set(tenantId, lastSeq);
    this.scheduleRead();
  }

  /** Compares every tracked tenant with its committed last seq. */
  async catchUp(): Promise<void> {
    const tenants = this.tenants;
    if (tenants.length === 0) return;
    const lastSeqs = await this.source.lastSeqs(tenants);
    for (const [tenantId, lastSeq] of lastSeqs) {
      this.notified(tenantId, lastSeq);
    }
  }

  /**
   * Delivers the changes that are next in seq order, keeps those after a
   * gap until the gap is read, and drops those delivered already.
   */
  private offer(tenantId: string, changes: readonly Change[]): void {
    let last = this.delivered.get(tenantId)!;
    const ready: Change[] = [];
    let waiting = this.waiting.get(tenantId);
    for (const change of changes) {
      if (change.seq <= last) continue;
      if (change.seq === last + 1) {
        ready.push(change);
        last = change.seq;
        continue;
      }
      if (!waiting) {
        waiting = new Map();
        this.waiting.set(tenantId, waiting);
      }
      waiting.set(change.seq, change);
    }
    while (waiting?.has(last + 1)) {
      const next = waiting.get(last + 1)!;
      waiting.delete(last + 1);
      ready.push(next);
      last = next.seq;
    }
    if (waiting) {
      for (const seq of waiting.keys()) if (seq <= last) waiting.delete(seq);
      if (waiting.size === 0) this.waiting.delete(tenantId);
    }

    this.delivered.set(tenantId, last);
    const known = Math.max(this.known.get(tenantId) ?? 0, last);
    const waitingMax = waiting?.size ? Math.max(...waiting.keys()) : 0;
    this.known.set(tenantId, Math.max(known, waitingMax));
    if (ready.length > 0) this.emit(ready);
    if (this.known.get(tenantId)! > last) this.scheduleRead();
  }

  private scheduleRead(): void {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = this.readGaps().finally(() => {
      this.reading = null;
      if (this.readAgain) {
        this.readAgain = false;
        this.scheduleRead();
      }
    });
  }

  /** Reads every tracked tenant's gap from the change table, in pages. */
  private async readGaps(): Promise<void> {
    try {
      for (const [tenantId, known] of this.known) {
        let delivered = this.delivered.get(tenantId)!;
        while (delivered < known) {
          const page = await this.source.readChanges(
            tenantId,
            delivered,
            known,
            catchUpPageSize,
          );
          delivered = this.delivered.get(tenantId)!;
          const first = page.find((change) => change.seq > delivered);
          if (first === undefined) {
            if (page.length === 0) this.skipMissing(tenantId, known + 1);
            break;
          }
          if (first.seq !== delivered + 1)
            this.skipMissing(tenantId, first.seq);
          this.offer(tenantId, page);
          delivered = this.delivered.get(tenantId)!;
        }
      }
      this.failing = false;
    } catch (error) {
      // Retried by the next notification or catch-up: `known` stays ahead
      // of `delivered`, so nothing is dropped meanwhile.
      if (!this.failing) this.onError(error);
      this.failing = true;
    }
  }

  /**
   * Moves past changes that the change table no longer has. This happens
   * only when this process fell behind by more than the retained history.
   */
  // NOTE: watchers of this process then miss those changes without being
  // notified. The retained history (100,000 changes or 24 h per tenant) makes
  // this unlikely, not impossible.
  private skipMissing(tenantId: string, nextSeq: number): void {
    const delivered = this.delivered.get(tenantId)!;
    if (nextSeq <= delivered + 1) return;
    this.onError(
      new Error(
        `changes ${delivered + 1} to ${nextSeq - 1} of tenant ${tenantId} are missing from the change table; watchers on this process skip them`,
      ),
    );
    this.delivered.set(tenantId, nextSeq - 1);
    const known = this.known.get(tenantId)!;
    if (known < nextSeq - 1) this.known.set(tenantId, nextSeq - 1);
  }
}
