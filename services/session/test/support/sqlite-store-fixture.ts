import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Database from "better-sqlite3";
import pino from "pino";
import { afterEach, beforeEach } from "vitest";
import { SqliteSessionStore } from "@skein/goose-sessions/sqlite";

/** A fresh directory per test for a SqliteSessionStore, and goose-side connections closed after it. */
export interface SqliteStoreFixture {
  /** The test's directory (new for each test, removed after it). */
  dir: string;
  /** The store the test opened (closed after it); a test may set one it opened itself. */
  store: SqliteSessionStore | undefined;
  /** Opens the store in `d` (the test's directory by default) as the service does, without fsync per message. */
  open(d?: string): Promise<SqliteSessionStore>;
  /** Keeps a goose-side connection to close after the test. */
  goose(db: Database.Database): Database.Database;
}

export const silentLog = pino({ level: "silent" });

/** Registers the per-test setup and teardown in the calling test file. */
export function useSqliteStore(): SqliteStoreFixture {
  const dbs: Database.Database[] = [];
  const fx: SqliteStoreFixture = {
    dir: "",
    store: undefined,
    open: async (d = fx.dir) => (fx.store = await SqliteSessionStore.open(d, silentLog, { syncEachMessage: false })),
    goose: (db) => (dbs.push(db), db),
  };
  beforeEach(async () => {
    fx.dir = await mkdtemp(join(tmpdir(), "skein-sqlite-"));
  });
  afterEach(async () => {
    await fx.store?.close();
    fx.store = undefined;
    for (const db of dbs.splice(0)) db.close();
    await rm(fx.dir, { recursive: true, force: true });
  });
  return fx;
}
