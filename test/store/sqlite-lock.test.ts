import assert from "node:assert/strict";
import { link, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { lockStoreFile } from "../../src/store/sqlite-lock.js";

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "kvstream-lock-"));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("second lock on one file fails", () => {
  const file = join(dir, "direct.db");
  const unlock = lockStoreFile(file);
  try {
    assert.throws(() => lockStoreFile(file), /already serving/);
  } finally {
    unlock();
  }
});

test("lock is free again after release", () => {
  const file = join(dir, "released.db");
  lockStoreFile(file)();
  const unlock = lockStoreFile(file);
  unlock();
});

test("symbolic link shares the lock", async () => {
  const file = join(dir, "target.db");
  const link = join(dir, "link.db");
  await writeFile(file, "");
  const unlock = lockStoreFile(file);
  try {
    await symlink(file, link);
    assert.throws(() => lockStoreFile(link), /already serving/);
  } finally {
    unlock();
  }
});

test("dangling symbolic link shares the lock", async () => {
  const file = join(dir, "later.db");
  const link = join(dir, "later-link.db");
  await symlink(file, link);
  const unlock = lockStoreFile(link);
  try {
    assert.throws(() => lockStoreFile(file), /already serving/);
  } finally {
    unlock();
  }
});

test("hard link shares the lock", async () => {
  const file = join(dir, "hard.db");
  const other = join(dir, "hard-other.db");
  await writeFile(file, "");
  await link(file, other);
  const unlock = lockStoreFile(file);
  try {
    assert.throws(() => lockStoreFile(other), /already serving/);
  } finally {
    unlock();
  }
});
