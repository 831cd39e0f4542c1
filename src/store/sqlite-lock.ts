import {
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  realpathSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";

import Database, { type Database as Connection } from "better-sqlite3";

/**
 * Resolves every symbolic link in the file's path, also a link whose
 * target does not exist yet, so that two paths to one file share a lock.
 */
function canonicalPath(file: string): string {
  let path = resolve(file);
  for (let hops = 0; hops < 40; hops++) {
    let isLink: boolean;
    try {
      isLink = lstatSync(path).isSymbolicLink();
    } catch {
      break;
    }
    if (!isLink) break;
    path = resolve(dirname(path), readlinkSync(path));
  }
  try {
    return join(realpathSync(dirname(path)), basename(path));
  } catch {
    return path;
  }
}

/**
 * Takes an exclusive lock on a SQLite file of its own, in exclusive locking
 * mode, so the operating system releases it when the process dies, even
 * after kill -9, and no stale lock ever needs cleaning up.
 */
function takeLock(lockPath: string, storeFile: string): Connection {
  const lock = new Database(lockPath, { timeout: 0 });
  try {
    lock.pragma("locking_mode = EXCLUSIVE");
    lock.exec("BEGIN EXCLUSIVE");
    lock.exec("CREATE TABLE IF NOT EXISTS server (pid INTEGER)");
    lock.exec("DELETE FROM server");
    lock.prepare("INSERT INTO server (pid) VALUES (?)").run(process.pid);
    lock.exec("COMMIT");
    return lock;
  } catch (error) {
    lock.close();
    if ((error as { code?: string }).code?.startsWith("SQLITE_BUSY")) {
      throw new Error(
        `Another kvstream server is already serving ${storeFile}; one server process may use a SQLite file at a time, so stop that server first.`,
      );
    }
    throw error;
  }
}

/**
 * Holds the server lock of a store file for as long as this process serves
 * it, so a second server on the same file fails at once. There are two
 * locks: `<file>.lock` beside the file, with symbolic links resolved, and
 * one named after the file's device and inode in the temporary folder,
 * which a hard link to the same file shares. The CLI takes neither and may
 * change keys while a server runs.
 */
export function lockStoreFile(file: string): () => void {
  const canonical = canonicalPath(file);
  const besideFile = takeLock(`${canonical}.lock`, file);
  try {
    // SQLite takes an empty file as a new database, so creating it here
    // changes nothing but gives the file its inode.
    closeSync(openSync(canonical, "a"));
    const { dev, ino } = statSync(canonical);
    const folder = join(tmpdir(), "kvstream-locks");
    mkdirSync(folder, { recursive: true });
    const byInode = takeLock(join(folder, `${dev}-${ino}.lock`), file);
    return () => {
      byInode.close();
      besideFile.close();
    };
  } catch (error) {
    besideFile.close();
    throw error;
  }
}
