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
 * transaction is ever open across an await.
 *
 * Writes are committed in groups: every write asked for in one turn of the
 * event loop runs in one BEGIN IMMEDIATE … COMMIT, each unit in its own
 * savepoint (a unit that throws is rolled back alone and gets its error; the
 * others commit). A commit costs more than the statements of a message (goose's
 * schema dirties a page of the messages table and of four indexes, each a
 * frame written to the WAL): with hundreds of replies streaming, their
 * messages and metadata updates share commits and pages (the paced bench at
 * 200 replies: about 7 % of the service's CPU per event). Groups go one at a
 * time, in the order their writes were asked for (SQLite has one writer anyway).
 */
export class Connection {
  private writeChain: Promise<unknown> = Promise.resolve();
  /** Writes waiting for their group, and whether that group is scheduled. */
  private queued: QueuedWrite[] = [];
  private groupScheduled = false;
  private savepointStatements: [Database.Statement, Database.Statement, Database.Statement] | undefined;
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

  /**
   * `work` inside a BEGIN IMMEDIATE transaction, after this process's earlier
   * writes, together with the other writes asked for in this turn of the
   * event loop (see the class comment). Resolves once its group committed.
   */
  write<T>(work: (db: Db) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queued.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (this.groupScheduled) return;
      this.groupScheduled = true;
      // The turn is taken now, not once the chain resolves: work scheduled after this write (a model request built
      // one turn later, see afterQueuedWrites) still comes after its commit.
      const turn = nextTurn();
      const group = this.writeChain.then(() => turn).then(() => this.commitGroup());
      this.writeChain = group.catch(() => undefined);
    });
  }

  /** Runs the queued writes in one transaction (retried as a whole while another process holds the lock), then settles each. */
  private async commitGroup(): Promise<void> {
    this.groupScheduled = false;
    const group = this.queued;
    this.queued = [];
    let outcomes: Outcome[];
    try {
      outcomes = await retryBusy(() => this.tx.immediate((db) => (group.length === 1 ? [{ value: group[0]!.work(db) }] : this.inSavepoints(group, db)), this.facade) as Outcome[]);
    } catch (err) {
      // BEGIN or COMMIT failed (a full disk, a lock held past LOCK_WAIT_MS), or the one unit alone threw: nothing was written.
      for (const u of group) u.reject(err);
      return;
    }
    outcomes.forEach((o, i) => ("err" in o ? group[i]!.reject(o.err) : group[i]!.resolve(o.value)));
  }

  private inSavepoints(group: readonly QueuedWrite[], db: Db): Outcome[] {
    const [begin, release, rollback] = this.savepoint;
    return group.map((u): Outcome => {
      begin.run();
      try {
        const value = u.work(db);
        release.run();
        return { value };
      } catch (err) {
        // A lock met inside the transaction: the whole group is retried (a unit's own failure is its alone).
        if (isBusy(err)) throw err;
        rollback.run();
        release.run();
        return { err };
      }
    });
  }

  private get savepoint(): [Database.Statement, Database.Statement, Database.Statement] {
    this.savepointStatements ??= [this.db.prepare("SAVEPOINT skein_write"), this.db.prepare("RELEASE skein_write"), this.db.prepare("ROLLBACK TO skein_write")];
    return this.savepointStatements;
  }

  /** Waits for queued writes, then closes (a WAL checkpoint happens if no one else has the file open). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writeChain;
    this.db.close();
  }
}

interface QueuedWrite {
  readonly work: (db: Db) => unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

type Outcome = { readonly value: unknown } | { readonly err: unknown };

/** The next turn of the event loop: the writes asked for until then join the group. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
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
