import Database from "better-sqlite3";
import { StorageUnavailableError } from "@skein/runtime";

/** goose waits up to 30 s for a lock; so does skein, but without blocking the event loop. */
export const LOCK_WAIT_MS = 30_000;
const FIRST_BACKOFF_MS = 2;
const MAX_BACKOFF_MS = 100;
const MAX_CACHED_STATEMENTS = 200;

/**
 * What units of work get: the connection with prepared statements cached by
 * their SQL (the same few statements run for every message).
 */
export interface Db {
  prepare(sql: string): Database.Statement<unknown[]>;
  exec(sql: string): void;
  pragma(sql: string): unknown;
}

/** SQLITE_BUSY past its retry window: UNAVAILABLE (STORE_UNAVAILABLE in a Reply), as store-faults.ts maps it. */
export class DatabaseBusyError extends StorageUnavailableError {
  constructor(ms: number) {
    super(`the session database stayed locked by another process for ${Math.round(ms / 1000)} s; try again`);
  }
}

/**
 * One better-sqlite3 connection with busy_timeout 0: a statement that meets
 * another process's lock fails at once with SQLITE_BUSY instead of waiting
 * inside the (synchronous) driver, which would stall the event loop and every
 * other session's stream. `read`/`write` retry such failures asynchronously
 * with backoff for up to LOCK_WAIT_MS. Each unit of work is synchronous, so no
 * transaction is ever open across an await; writes of this process go one at a
 * time (SQLite has one writer anyway), in the order they were asked for.
 */
export class Connection {
  private writeChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly statements = new Map<string, Database.Statement<unknown[]>>();
  private readonly facade: Db;
  /**
   * One transaction wrapper for every unit of work (better-sqlite3 passes the
   * arguments through): building one per call cost more than the two
   * statements of a fingerprint read.
   */
  private readonly tx: Database.Transaction<(work: (db: Db) => unknown, db: Db) => unknown>;

  private constructor(private readonly db: Database.Database) {
    this.tx = db.transaction((work: (db: Db) => unknown, facade: Db) => work(facade));
    this.facade = {
      prepare: (sql) => {
        let st = this.statements.get(sql);
        if (!st) {
          // Statements with a variable number of parameters make new SQL; keep the cache bounded.
          if (this.statements.size >= MAX_CACHED_STATEMENTS) this.statements.clear();
          st = this.db.prepare<unknown[]>(sql);
          this.statements.set(sql, st);
        }
        return st;
      },
      exec: (sql) => void this.db.exec(sql),
      pragma: (sql) => this.db.pragma(sql),
    };
  }

  static open(path: string, opts: { fullSync: boolean }): Connection {
    const db = new Database(path, { timeout: 0 });
    try {
      db.pragma("foreign_keys = ON");
      // FULL also survives power loss; NORMAL (WAL) survives process death, like the JSONL store without fsync.
      db.pragma(`synchronous = ${opts.fullSync ? "FULL" : "NORMAL"}`);
    } catch (err) {
      db.close();
      throw err;
    }
    return new Connection(db);
  }

  /**
   * A read in one deferred transaction (one snapshot, though another process
   * may commit between its statements), retried while a lock blocks it (rare in WAL mode).
   */
  read<T>(work: (db: Db) => T): Promise<T> {
    return retryBusy(() => this.tx.deferred(work, this.facade) as T);
  }

  /** Outside any transaction (journal_mode cannot change inside one), retried while busy. */
  setup<T>(work: (db: Db) => T): Promise<T> {
    return retryBusy(() => work(this.facade));
  }

  /** `work` inside one BEGIN IMMEDIATE transaction, after this process's earlier writes. */
  write<T>(work: (db: Db) => T): Promise<T> {
    const run = this.writeChain.then(() => retryBusy(() => this.tx.immediate(work, this.facade) as T));
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  /** Waits for queued writes, then closes (a WAL checkpoint happens if no one else has the file open). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writeChain;
    this.db.close();
  }
}

export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"));
}

async function retryBusy<T>(attempt: () => T): Promise<T> {
  const start = Date.now();
  let backoff = FIRST_BACKOFF_MS;
  for (;;) {
    try {
      return attempt();
    } catch (err) {
      if (!isBusy(err)) throw err;
      const waited = Date.now() - start;
      if (waited >= LOCK_WAIT_MS) throw new DatabaseBusyError(waited);
      await new Promise((r) => setTimeout(r, Math.min(backoff, LOCK_WAIT_MS - waited)));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
}
