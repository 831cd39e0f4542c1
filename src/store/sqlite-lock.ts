import { existsSync, realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";

import Database from "better-sqlite3";

/**
 * The file's path with every symbolic link resolved, so that two paths to
 * one file share one lock. The file itself may not exist yet.
 */
function canonicalPath(file: string): string {
  if (existsSync(file)) return realpathSync(file);
  return join(realpathSync(dirname(file)), basename(file));
}

/**
 * Holds an exclusive lock on `<file>.lock` for as long as this process
 * serves the store file, so a second server on the same file fails at once.
 * The lock is a SQLite file in exclusive locking mode, so the operating
 * system releases it when the process dies, even after kill -9, and no
 * stale lock file ever needs cleaning up. The CLI does not take this lock
 * and may change keys while a server runs.
 */
export function lockStoreFile(file: string): () => void {
  // NOTE: a hard link to the store file has a path of its own and so a
  // lock of its own; only symbolic links are resolved.
  const lockPath = `${canonicalPath(file)}.lock`;
  const lock = new Database(lockPath, { timeout: 0 });
  try {
    lock.pragma("locking_mode = EXCLUSIVE");
    lock.exec("BEGIN EXCLUSIVE");
    lock.exec("CREATE TABLE IF NOT EXISTS server (pid INTEGER)");
    lock.exec("DELETE FROM server");
    lock.prepare("INSERT INTO server (pid) VALUES (?)").run(process.pid);
    lock.exec("COMMIT");
  } catch (error) {
    lock.close();
    if ((error as { code?: string }).code?.startsWith("SQLITE_BUSY")) {
      throw new Error(
        `Another kvstream server is already serving ${file}; one server process may use a SQLite file at a time, so stop that server first.`,
      );
    }
    throw error;
  }
  return () => lock.close();
}
