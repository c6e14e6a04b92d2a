import { InvalidArgumentError, NotFoundError, type Logger } from "@skein/runtime";
import { isObject, type GooseMessage, type GooseMetadata, type JsonObject } from "../goose-format/messages.js";
import { isValidSessionId } from "../ids.js";
import { STATE_KEY } from "../goose-format/skein-metadata.js";
import type { LoadedSession, SessionInfo, SessionPage, SessionStore } from "../session-store.js";
import type { Connection, Db } from "./connection.js";
import { openGooseDatabase } from "./open-database.js";
import { CARRIED_COLUMNS, type ImportedSession } from "../copy-session.js";
import type { ToolResultForm } from "../goose-rows/content.js";
import { messageOfRow, prepareMessage, type PreparedMessage } from "../goose-rows/messages.js";
import { insertMessage } from "./message-rows.js";
import { rewriteMessages } from "./conversation-rewrite.js";
import { dataVersion, OwnWrites } from "./own-writes.js";
import { columnChanges, metadataOfRow, parseSqlTimestamp, sqlTimestamp, type Row } from "../goose-rows/rows.js";
import type { StoreTarget } from "../store-faults.js";
import { decodePageToken, encodePageToken } from "../page-token.js";

export const DB_NAME = "sessions.db";
/** goose lists these types; sub-agent, hidden, terminal, gateway and ACP sessions are goose's internals. */
const LISTED_TYPES = ["user", "scheduled"];
export interface SqliteStoreOptions {
  /** synchronous=FULL (survives power loss) instead of NORMAL (survives process death). */
  readonly syncEachMessage: boolean;
}


/**
 * goose's sessions.db (goose ≥1.10), shared with running goose processes: one
 * row per session and per message, every write one short BEGIN IMMEDIATE
 * transaction. Tables and columns are introspected at open; skein writes only
 * columns that exist and never changes goose's schema.
 */
export class SqliteSessionStore implements SessionStore {
  /** The run's appended messages and each update's data_version (see OwnWrites). */
  private readonly own = new OwnWrites();
  /**
   * Bumped when this store stored something other than what it was given (a
   * message left out or cut down) or rewrote a conversation: a copy kept in
   * memory would then differ from the database although no one else wrote.
   */
  private altered = 0;

  readonly target: StoreTarget;

  private constructor(
    readonly path: string,
    private readonly conn: Connection,
    private readonly log: Logger,
    private readonly sessionColumns: ReadonlySet<string>,
    private readonly messageColumns: ReadonlySet<string>,
    readonly schemaVersion: number,
    readonly toolResultForm: ToolResultForm,
    /** True when this open created the database (goose then imports the directory's JSONL files once). */
    readonly created: boolean,
    /** The SQLite library's version (better-sqlite3's bundled one). */
    readonly sqliteVersion: string,
  ) {
    this.target = { kind: "sqlite", location: path };
  }

  static async open(dir: string, log: Logger, opts: SqliteStoreOptions): Promise<SqliteSessionStore> {
    const d = await openGooseDatabase(dir, DB_NAME, log, opts);
    return new SqliteSessionStore(d.path, d.conn, log, d.sessionColumns, d.messageColumns, d.schemaVersion, d.toolResultForm, d.created, d.sqliteVersion);
  }

  private checkId(id: string): void {
    // Callers validate; this guards the invariant that only valid ids reach SQL (always as bound parameters).
    if (!isValidSessionId(id)) throw new InvalidArgumentError("session_id", "is not a valid session id");
  }

  /** Allocates goose's id (UTC `YYYYMMDD_N`, N one above the day's highest) in the insert's own transaction. */
  async create(metadata: GooseMetadata): Promise<SessionInfo> {
    const values = { session_type: "user", goose_mode: "auto", ...this.newRowValues(metadata) };
    const cols = Object.keys(values).filter((c) => this.sessionColumns.has(c));
    const row = await this.conn.write((db) => {
      const today = new Date().toISOString().slice(0, 10).replaceAll("-", "");
      const sql =
        `INSERT INTO sessions (id, ${cols.join(", ")}) VALUES (` +
        `? || '_' || CAST(COALESCE((SELECT MAX(CAST(SUBSTR(id, 10) AS INTEGER)) FROM sessions WHERE id LIKE ? || '_%'), 0) + 1 AS TEXT), ` +
        `${cols.map(() => "?").join(", ")}) RETURNING *`;
      return db.prepare(sql).get(today, today, ...cols.map((c) => values[c as keyof typeof values])) as Row;
    });
    return this.infoOf(row, 0);
  }

  async info(id: string): Promise<SessionInfo | undefined> {
    this.checkId(id);
    return this.conn.read((db) => {
      const row = db.prepare("SELECT * FROM sessions WHERE id = ?").get(id) as Row | undefined;
      if (!row) return undefined;
      return this.infoOf(row, this.messageCount(db, id));
    });
  }

  async load(id: string): Promise<LoadedSession | undefined> {
    this.checkId(id);
    const read = await this.conn.read((db) => {
      const row = db.prepare("SELECT * FROM sessions WHERE id = ?").get(id) as Row | undefined;
      if (!row) return undefined;
      const rows = db.prepare("SELECT * FROM messages WHERE session_id = ? ORDER BY created_timestamp, id").all(id) as Row[];
      return { row, rows };
    });
    if (!read) return undefined;
    const messages: GooseMessage[] = [];
    let corruptLines = 0;
    for (const r of read.rows) {
      if (r.role !== "user" && r.role !== "assistant") continue;
      try {
        messages.push(messageOfRow(r));
      } catch (err) {
        corruptLines++;
        this.log.warn({ sessionId: id, rowId: r.id, reason: (err as Error).message }, "skipping a message row that does not parse; it stays in the database");
      }
    }
    return { ...this.infoOf(read.row, read.rows.length), messages, corruptLines };
  }

  /**
   * PRAGMA data_version changes with every commit of another connection (goose,
   * another skein process) and never with this connection's own: database-wide,
   * so another process's write to any session gives every session a new fingerprint.
   */
  async fingerprint(id: string): Promise<string | undefined> {
    this.checkId(id);
    return this.conn.read((db) => {
      if (db.prepare("SELECT 1 FROM sessions WHERE id = ?").get(id) === undefined) return undefined;
      const { data_version: v } = db.prepare("PRAGMA data_version").get() as { data_version: number };
      return `${v}:${this.altered}`;
    });
  }

  /** Newest first by goose's order: the latest message, else updated_at; ties by insertion. */
  async list(pageSize: number, pageToken: string): Promise<SessionPage> {
    const cursor = pageToken === "" ? undefined : decodeToken(pageToken);
    const rows = await this.conn.read((db) => {
      const where = this.sessionColumns.has("session_type") ? `WHERE s.session_type IN (${LISTED_TYPES.map(() => "?").join(", ")})` : "";
      const sortTs = "COALESCE(MAX(CASE WHEN m.created_timestamp > 10000000000 THEN m.created_timestamp / 1000 ELSE m.created_timestamp END), unixepoch(s.updated_at), 0)";
      const having = cursor ? "HAVING (sort_ts < ? OR (sort_ts = ? AND s.rowid < ?))" : "";
      const sql =
        `SELECT s.*, s.rowid AS skein_rowid, COUNT(m.id) AS skein_message_count, ${sortTs} AS sort_ts ` +
        `FROM sessions s LEFT JOIN messages m ON m.session_id = s.id ${where} GROUP BY s.id ${having} ORDER BY sort_ts DESC, s.rowid DESC LIMIT ?`;
      const params: unknown[] = [...(where ? LISTED_TYPES : []), ...(cursor ? [cursor.t, cursor.t, cursor.r] : []), pageSize + 1];
      return db.prepare(sql).all(...params) as Row[];
    });
    const page = rows.slice(0, pageSize);
    const sessions = page.map((r) => this.infoOf(r, Number(r.skein_message_count), false));
    const last = page.at(-1);
    return { sessions, nextPageToken: rows.length > pageSize && last ? encodeToken({ t: Number(last.sort_ts), r: Number(last.skein_rowid) }) : "" };
  }

  async count(): Promise<number> {
    return this.conn.read((db) => {
      const typed = this.sessionColumns.has("session_type");
      const sql = `SELECT COUNT(*) AS n FROM sessions${typed ? ` WHERE session_type IN (${LISTED_TYPES.map(() => "?").join(", ")})` : ""}`;
      return Number((db.prepare(sql).get(...(typed ? LISTED_TYPES : [])) as { n: number }).n);
    });
  }

  /**
   * One transaction: bump updated_at (the session must still exist), then insert
   * the row with `created` raised to the session's latest, as goose's add_message
   * does. A message without an id gets goose's `msg_<session>_<uuid>`, also on
   * the object, so the event announcing it carries the stored id.
   */
  async append(id: string, message: GooseMessage): Promise<void> {
    this.checkId(id);
    const prepared = this.storable(id, message);
    if (!prepared) return;
    const track = this.messageColumns.has("message_id");
    const version = await this.conn.write((db) => {
      this.insertRow(db, id, prepared);
      // The first message tracked since the last update notes which other commits it came after (see OwnWrites.restoreLost).
      return track && this.own.wantsVersion(id) ? dataVersion(db) : undefined;
    });
    if (track) this.own.appended(id, prepared, version);
    if (message.id === null && this.messageColumns.has("message_id")) message.id = prepared.messageId;
  }

  /**
   * A reply's last message and the metadata update that closes the run, in
   * one transaction, both or neither: one commit instead of two (goose's
   * schema writes seven pages per message and two per update, the sessions
   * pages shared), and the session's tokens never lag its messages.
   */
  async appendClosing(id: string, message: GooseMessage, update: (current: GooseMetadata) => GooseMetadata, messageCount?: number): Promise<GooseMetadata | undefined> {
    this.checkId(id);
    const prepared = this.storable(id, message);
    if (!prepared) return this.updateMetadata(id, update);
    const done = await this.conn.write((db) => {
      this.insertRow(db, id, prepared);
      return this.updateInTransaction(db, id, update, messageCount);
    });
    if (message.id === null && this.messageColumns.has("message_id")) message.id = prepared.messageId;
    return this.updated(id, done);
  }

  /** The message's row values, or undefined (and a warning) when nothing goose can read is left of it. */
  private storable(id: string, message: GooseMessage): PreparedMessage | undefined {
    const prepared = prepareMessage(id, message, this.toolResultForm);
    if (!prepared) {
      this.altered++;
      this.log.warn({ sessionId: id, types: message.content.map((c) => c.type) }, "not storing a message with only content types goose cannot read");
      return undefined;
    }
    if (prepared.dropped.length > 0) {
      this.altered++;
      this.log.warn({ sessionId: id, types: prepared.dropped }, "left out content types goose cannot read");
    }
    return prepared;
  }

  /** Inside a write: bump updated_at (the session must still exist), insert the row with `created` raised to the session's latest. */
  private insertRow(db: Db, id: string, prepared: PreparedMessage): void {
    if (db.prepare("UPDATE sessions SET updated_at = datetime('now') WHERE id = ?").run(id).changes === 0) throw new NotFoundError(`session ${id} does not exist`);
    const latest = (db.prepare("SELECT MAX(created_timestamp) AS t FROM messages WHERE session_id = ?").get(id) as { t: number | null }).t;
    insertMessage(db, this.messageColumns, id, prepared, Math.max(prepared.created, latest ?? prepared.created));
  }

  async writeMetadata(id: string, metadata: GooseMetadata): Promise<void> {
    await this.updateMetadata(id, () => metadata);
  }

  async updateMetadata(id: string, update: (current: GooseMetadata) => GooseMetadata): Promise<GooseMetadata | undefined> {
    this.checkId(id);
    return this.updated(id, await this.conn.write((db) => this.updateInTransaction(db, id, update)));
  }

  /** Inside a write: the run's lost messages put back, then `update(current)` written; undefined when the session is gone. `count`: the message count as the caller knows it (else counted). */
  private updateInTransaction(db: Db, id: string, update: (current: GooseMetadata) => GooseMetadata, count?: number): { next: GooseMetadata; version: number } | undefined {
    const row = db.prepare("SELECT * FROM sessions WHERE id = ?").get(id) as Row | undefined;
    if (!row) return undefined;
    const version = dataVersion(db);
    this.own.restoreLost(db, this.messageColumns, id, this.log, version);
    const current = metadataOfRow(row, count ?? this.messageCount(db, id)).metadata;
    const next = update(current);
    this.updateRow(db, id, row, current, next);
    return { next, version };
  }

  /** After an update committed: what it wrote, its data_version kept for ownFingerprint. */
  private updated(id: string, done: { next: GooseMetadata; version: number } | undefined): GooseMetadata | undefined {
    if (!done) return undefined;
    this.own.updated(id, done.version);
    return done.next;
  }

  /** Right after this store's metadata update of the session, what fingerprint() would have answered then (see OwnWrites.known). */
  ownFingerprint(id: string): string | undefined {
    const version = this.own.known(id);
    return version === undefined ? undefined : `${version}:${this.altered}`;
  }

  /**
   * Compaction the way current goose records it (save_compacted_conversation):
   * no message is deleted, only visibility flags change (see rewriteMessages).
   */
  async rewrite(id: string, update: (current: GooseMetadata) => GooseMetadata, messages: readonly GooseMessage[]): Promise<SessionInfo> {
    this.checkId(id);
    const prepared = new Map<GooseMessage, PreparedMessage | undefined>();
    for (const m of messages) prepared.set(m, prepareMessage(id, m, this.toolResultForm));
    this.altered++;
    const row = await this.conn.write((db) => {
      const before = db.prepare("SELECT * FROM sessions WHERE id = ?").get(id) as Row | undefined;
      if (!before) throw new NotFoundError(`session ${id} does not exist`);
      this.own.restoreLost(db, this.messageColumns, id, this.log);
      rewriteMessages(db, this.messageColumns, id, messages, prepared);
      const current = metadataOfRow(before, this.messageCount(db, id)).metadata;
      this.updateRow(db, id, before, current, update(current), true);
      return db.prepare("SELECT * FROM sessions WHERE id = ?").get(id) as Row;
    });
    return this.conn.read((db) => this.infoOf(row, this.messageCount(db, id)));
  }

  async delete(id: string): Promise<boolean> {
    this.checkId(id);
    this.own.forget(id);
    return this.conn.write((db) => {
      // Messages first (foreign key); usage_ledger rows cascade.
      db.prepare("DELETE FROM messages WHERE session_id = ?").run(id);
      return db.prepare("DELETE FROM sessions WHERE id = ?").run(id).changes > 0;
    });
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  /** The session in the shape importSession takes (of this store or the PostgreSQL one): for export. */
  async exportSession(id: string): Promise<ImportedSession | undefined> {
    const loaded = await this.load(id);
    if (!loaded) return undefined;
    const row = await this.conn.read((db) => db.prepare("SELECT * FROM sessions WHERE id = ?").get(id) as Row | undefined);
    if (!row) return undefined;
    const at = (v: unknown) => sqlTimestamp(parseSqlTimestamp(v));
    const columns = Object.fromEntries(CARRIED_COLUMNS.filter((c) => row[c] !== null && row[c] !== undefined).map((c) => [c, row[c]]));
    return { id, metadata: loaded.metadata, messages: loaded.messages, createdAt: at(row.created_at), updatedAt: at(row.updated_at), columns };
  }

  /**
   * Inserts a JSONL session under its own id with goose's legacy-import rules;
   * false (and nothing written) when that id is already present.
   */
  async importSession(s: ImportedSession): Promise<boolean> {
    this.checkId(s.id);
    const prepared = s.messages.map((m) => prepareMessage(s.id, m, this.toolResultForm)).filter((p): p is PreparedMessage => p !== undefined);
    return this.conn.write((db) => {
      if (db.prepare("SELECT 1 FROM sessions WHERE id = ?").get(s.id)) return false;
      const title = s.metadata.description.split(/\s+/).filter(Boolean).join(" ");
      // goose ≤1.9 kept extension_data in the metadata line; skein's extensions join it in goose's shape.
      const data = isObject(s.metadata.extension_data) ? s.metadata.extension_data : {};
      const own = STATE_KEY in s.metadata ? {} : { [STATE_KEY]: metadataOfRow({ extension_data: JSON.stringify(data) }, 0).metadata[STATE_KEY] };
      const values: Row = { ...this.newRowValues({ ...s.metadata, ...own, description: title }, data), created_at: s.createdAt, updated_at: s.updatedAt, schedule_id: s.metadata.schedule_id, ...s.columns };
      const cols = Object.keys(values).filter((c) => this.sessionColumns.has(c));
      db.prepare(`INSERT INTO sessions (id, ${cols.join(", ")}) VALUES (?, ${cols.map(() => "?").join(", ")})`).run(s.id, ...cols.map((c) => values[c]));
      for (const p of prepared) insertMessage(db, this.messageColumns, s.id, p, p.created);
      return true;
    });
  }

  /** A new row's mapped columns: what the metadata changes from an empty row's (with goose's extension_data when importing). */
  private newRowValues(metadata: GooseMetadata, extensionData: JsonObject = {}): Row {
    const empty: Row = { extension_data: JSON.stringify(extensionData) };
    const changes = columnChanges(empty, metadataOfRow(empty, 0).metadata, metadata, this.sessionColumns);
    return { working_dir: metadata.working_dir, extension_data: empty.extension_data, ...changes };
  }

  private updateRow(db: Db, id: string, row: Row, before: GooseMetadata, after: GooseMetadata, touch = false): void {
    const changes = columnChanges(row, before, after, this.sessionColumns);
    const cols = Object.keys(changes);
    if (cols.length === 0 && !touch) return;
    const sets = [...cols.map((c) => `${c} = ?`), "updated_at = datetime('now')"];
    db.prepare(`UPDATE sessions SET ${sets.join(", ")} WHERE id = ?`).run(...cols.map((c) => changes[c]), id);
  }

  private messageCount(db: Db, id: string): number {
    return Number((db.prepare("SELECT COUNT(*) AS n FROM messages WHERE session_id = ?").get(id) as { n: number }).n);
  }

  /** `warn`: say which stored extensions skein cannot run (not for every row of a listing). */
  private infoOf(row: Row, messageCount: number, warn = true): SessionInfo {
    const m = metadataOfRow(row, messageCount);
    if (warn && m.skippedExtensions.length > 0) this.log.warn({ sessionId: row.id, extensions: m.skippedExtensions }, "stdio extensions in extension_data that skein cannot run; they stay stored");
    return { id: String(row.id), metadata: m.metadata, updatedAt: parseSqlTimestamp(row.updated_at) };
  }
}

const encodeToken = (c: { t: number; r: number }) => encodePageToken(c);
const decodeToken = (token: string) => decodePageToken<{ t: number; r: number }>(token, (v) => typeof v.t === "number" && typeof v.r === "number");
