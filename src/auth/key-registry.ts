import type { Logger } from "pino";

import type { Store } from "../store/store.js";
import { hashApiKey, looksLikeApiKey, type ApiKeyRecord } from "./api-key.js";

/**
 * A cache of API keys by hash, refreshed from the store often enough that
 * a key revoked by any process (the CLI, another server) stops working
 * within a second on every open connection.
 */
export class KeyRegistry {
  private readonly byHash = new Map<string, ApiKeyRecord>();
  private readonly byId = new Map<string, ApiKeyRecord>();
  private knownVersion = -1;
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;
  private failing = false;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly onRevoked: (keyId: string) => void,
    private readonly refreshIntervalMs = 250,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Returns the record of a valid, unrevoked key, or null. */
  async authenticate(key: string): Promise<ApiKeyRecord | null> {
    if (!looksLikeApiKey(key)) return null;
    const hash = hashApiKey(key);
    let record = this.byHash.get(hash);
    if (!record) {
      const found = await this.store.findApiKey(hash);
      if (!found) return null;
      record = this.byId.get(found.id) ?? found;
      this.byHash.set(hash, record);
      this.byId.set(record.id, record);
    }
    return record.revokedAt === null ? record : null;
  }

  isActive(keyId: string): boolean {
    const record = this.byId.get(keyId);
    return record !== undefined && record.revokedAt === null;
  }

  private async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const version = await this.store.apiKeysVersion();
      if (this.failing) this.logger.info("refreshing API keys works again");
      this.failing = false;
      if (version === this.knownVersion) return;

      const records = await this.store.listApiKeys();
      this.knownVersion = version;
      for (const fresh of records) {
        const cached = this.byId.get(fresh.id);
        if (!cached) continue;
        const newlyRevoked =
          cached.revokedAt === null && fresh.revokedAt !== null;
        cached.revokedAt = fresh.revokedAt;
        if (newlyRevoked) this.onRevoked(fresh.id);
      }
    } catch (error) {
      // Logged once per outage: the refresh runs four times a second.
      if (!this.failing) {
        this.logger.warn(
          { err: error },
          "refreshing API keys failed; retrying",
        );
      }
      this.failing = true;
    } finally {
      this.refreshing = false;
    }
  }
}
