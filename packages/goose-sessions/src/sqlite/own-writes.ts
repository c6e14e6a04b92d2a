import type { Logger } from "@skein/runtime";
import type { Db } from "./connection.js";
import { insertMessage } from "./message-rows.js";
import type { PreparedMessage } from "../goose-rows/messages.js";

// sessions.db's side of what this store knows about its own writes (PostgreSQL's is postgres/own-writes.ts).

/** Bound parameters per IN (…) query, far below SQLite's limit. */
const IN_CHUNK = 500;
/** Messages remembered per session for restoreLost. */
const MAX_TRACKED = 10_000;
/** Sessions whose last update's data_version waits for known(); past this the waiting answers are dropped (they only save a read). */
const MAX_UPDATED = 10_000;

/**
 * PRAGMA data_version: moves with every commit of another connection, never
 * with this connection's own. Read inside a transaction it tells which other
 * commits that transaction sees.
 */
export function dataVersion(db: Db): number {
  return (db.prepare("PRAGMA data_version").get() as { data_version: number }).data_version;
}

/**
 * What this connection's own writes tell without another read: the messages a
 * run appended since the session's last metadata update (goose's
 * replace_conversation, run by another process meanwhile, may have deleted
 * them), and the data_version each session's last update saw.
 */
export class OwnWrites {
  /** Per session: the messages appended since its last update, and data_version when the first went in. */
  private readonly sinceUpdate = new Map<string, { readonly version: number; readonly messages: PreparedMessage[] }>();
  private readonly updatedAt = new Map<string, number>();

  /** Inside an append's transaction: whether it must note data_version (the first message tracked since the last update). */
  wantsVersion(id: string): boolean {
    return !this.sinceUpdate.has(id);
  }

  /** After an append committed; `version` as wantsVersion asked for it (undefined: not noted, the next update looks). */
  appended(id: string, m: PreparedMessage, version: number | undefined): void {
    let since = this.sinceUpdate.get(id);
    if (!since) this.sinceUpdate.set(id, (since = { version: version ?? Number.NaN, messages: [] }));
    since.messages.push(m);
    // A run ends with a metadata update; this bounds what a session appended to without one keeps.
    if (since.messages.length > MAX_TRACKED) since.messages.shift();
  }

  /** After a metadata update committed, as its transaction saw the database. */
  updated(id: string, version: number): void {
    if (this.updatedAt.size >= MAX_UPDATED) this.updatedAt.clear();
    this.updatedAt.set(id, version);
  }

  /**
   * Right after this store's metadata update of the session (a run's last
   * write), the data_version that update saw: what a fingerprint read would
   * have found then, without the read. Answered once per update, so it never
   * vouches for an old state; another process's later commit is seen by the
   * next read (SessionStore.ownFingerprint's contract).
   */
  known(id: string): number | undefined {
    const version = this.updatedAt.get(id);
    this.updatedAt.delete(id);
    return version;
  }

  forget(id: string): void {
    this.sinceUpdate.delete(id);
    this.updatedAt.delete(id);
  }

  /**
   * Inside an update's transaction: re-inserts, in their order and after
   * everything now stored, the messages this process appended since the last
   * update that are no longer in the database because another process
   * replaced the conversation meanwhile. Nothing to look for when no other
   * connection committed since the first of them went in (data_version
   * unchanged; this store never deletes a run's rows itself): the common case
   * costs one PRAGMA instead of a query that walks the session's whole index
   * range (its message_id IN (…) is not what SQLite's planner searches by),
   * 28 µs at 200 messages and growing with them.
   */
  restoreLost(db: Db, columns: ReadonlySet<string>, id: string, log: Logger, version = dataVersion(db)): void {
    const tracked = this.sinceUpdate.get(id);
    this.sinceUpdate.delete(id);
    if (!tracked?.messages.length || version === tracked.version) return;
    const mine = tracked.messages;
    const present = new Set<string>();
    for (let i = 0; i < mine.length; i += IN_CHUNK) {
      const ids = mine.slice(i, i + IN_CHUNK).map((m) => m.messageId);
      const rows = db.prepare(`SELECT message_id FROM messages WHERE session_id = ? AND message_id IN (${ids.map(() => "?").join(", ")})`).all(id, ...ids) as { message_id: string }[];
      for (const r of rows) present.add(r.message_id);
    }
    const lost = mine.filter((m) => !present.has(m.messageId));
    if (lost.length === 0) return;
    let latest = (db.prepare("SELECT MAX(created_timestamp) AS t FROM messages WHERE session_id = ?").get(id) as { t: number | null }).t ?? 0;
    for (const m of lost) {
      latest = Math.max(latest, m.created);
      insertMessage(db, columns, id, m, latest);
    }
    log.warn({ sessionId: id, restored: lost.length }, "another process replaced this session's conversation during the run (goose compaction); re-added the run's messages after it");
  }
}
