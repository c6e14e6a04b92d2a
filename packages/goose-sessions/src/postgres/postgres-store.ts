import type pg from "pg";
import { InvalidArgumentError, NotFoundError, type Logger } from "@skein/runtime";
import { isObject, type GooseMessage, type GooseMetadata } from "../goose-format/messages.js";
import { isValidSessionId } from "../ids.js";
import { migrate } from "./migrate.js";
import { createPool, inTransaction, prepared, redactError } from "./pool.js";
import { DELETED_CHANNEL, type RunLease } from "./run-fence.js";
import { CARRIED_COLUMNS, type ImportedSession } from "../copy-session.js";
import type { LoadedSession, SessionInfo, SessionPage, SessionStore } from "../session-store.js";
import { STATE_KEY } from "../goose-format/skein-metadata.js";
import { messageOfRow, prepareMessage, type PreparedMessage } from "../goose-rows/messages.js";
import { metadataOfRow, sqlTimestamp, type Row } from "../goose-rows/rows.js";
import { decodePageToken, encodePageToken } from "../page-token.js";
import type { StoreTarget } from "../store-faults.js";
import { redactUrl } from "./database-url.js";
import { appendLeased, updateMetadataLeased, type LeasedWrite } from "./leased-writes.js";
import { lockForWrite, lockRowForWrite, OwnWrites, type LockedForWrite } from "./own-writes.js";
import { asGooseRow, carriedIn, insertMessages, JSONB_COLUMNS, lockedRow, messageCount, newRowValues, placeholder, updateRow } from "./session-rows.js";

/** Sessions of goose's listed types; others would be goose's internals, imported along. */
const LISTED_TYPES = ["user", "scheduled"];
/** goose's id allocation is serialized by one transaction-level advisory lock across replicas. */
const ID_LOCK_KEY = 0x736b6964;
const FINGERPRINT = prepared(
  "SELECT s.xmin::text || ':' || (SELECT COUNT(*) || ':' || COALESCE(MAX(m.id), 0) FROM messages m WHERE m.session_id = s.id) AS v FROM sessions s WHERE s.id = $1",
);
const SELECT_MESSAGES =
  "SELECT id, message_id, role, content_json::text AS content_json, created_timestamp, metadata_json::text AS metadata_json FROM messages WHERE session_id = $1 ORDER BY created_timestamp, id";

export interface PostgresStoreOptions {
  readonly applicationName?: string;
  readonly poolSize?: number;
}

/**
 * Sessions in PostgreSQL, shared by every replica, in goose's message model:
 * the same sessions/messages columns as goose's sessions.db (content_json is
 * the content array, metadata_json carries the visibility flags), so a session
 * exports to a goose database or JSONL file unchanged.
 *
 * Writes during a run carry the run's lease: `withLease(lease)` gives a view of
 * the store whose every write (append, updateMetadata, writeMetadata, rewrite)
 * checks, in the statement or transaction that writes, that the lease still
 * holds the session (leased-writes.ts, checkLease). A replica whose lease was
 * taken over gets LeaseLostError and writes nothing.
 */
export class PostgresSessionStore implements SessionStore {
  private constructor(
    readonly pool: pg.Pool,
    readonly target: StoreTarget,
    private readonly log: Logger,
    private readonly ownsPool: boolean,
    private readonly lease: RunLease | undefined,
    /** Shared by the lease views: what keeps the fingerprint across our own leased writes. */
    private readonly own: OwnWrites = new OwnWrites(),
  ) {}

  /** Connects, applies the schema migrations (under the advisory lock), and returns the store. */
  static async open(url: string, log: Logger, opts: PostgresStoreOptions = {}): Promise<PostgresSessionStore> {
    const pool = createPool(url, log, { applicationName: opts.applicationName ?? "skein-session", max: opts.poolSize });
    try {
      await migrate(pool, log);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw redactError(url, err);
    }
    return new PostgresSessionStore(pool, { kind: "postgres", location: redactUrl(url) }, log, true, undefined);
  }

  /** The same store whose writes are refused once `lease` no longer holds its session. */
  withLease(lease: RunLease): PostgresSessionStore {
    return new PostgresSessionStore(this.pool, this.target, this.log, false, lease, this.own);
  }

  private checkId(id: string): void {
    if (!isValidSessionId(id)) throw new InvalidArgumentError("session_id", "is not a valid session id");
  }

  private async guard(c: pg.ClientBase, id: string): Promise<LockedForWrite | undefined> {
    if (!this.lease) return undefined;
    if (this.lease.sessionId !== id) throw new Error(`a lease on session ${this.lease.sessionId} cannot write session ${id}`);
    return lockForWrite(c, this.lease);
  }

  /**
   * A write's transaction, guarded by the lease (if any); then the fingerprint
   * follows our own write or moves (OwnWrites). `touch`: the session's
   * updated_at is bumped first; a session that does not exist is then
   * NOT_FOUND. `row`: the session row is
   * locked (FOR UPDATE) and given to `fn`, in the guard's statement when
   * leased; undefined when the session does not exist.
   */
  private async write<T>(id: string, fn: (c: pg.PoolClient, row: Row | undefined) => Promise<T>, first: "touch" | "row" | "nothing" = "nothing"): Promise<T> {
    let locked: LockedForWrite | undefined;
    try {
      const out = await inTransaction(this.pool, async (c) => {
        const leased = this.lease?.sessionId === id ? this.lease : undefined;
        if (leased && first === "row") {
          const got = await lockRowForWrite(c, leased);
          locked = got?.locked;
          return fn(c, got && asGooseRow(got.row));
        }
        locked = await this.guard(c, id);
        if (first === "touch" && (await c.query("UPDATE sessions SET updated_at = now() WHERE id = $1", [id])).rowCount === 0) throw new NotFoundError(`session ${id} does not exist`);
        return fn(c, first === "row" ? await lockedRow(c, id) : undefined);
      });
      this.own.wrote(id, locked);
      return out;
    } catch (err) {
      // It may have committed all the same (a connection lost during COMMIT): never keep a fingerprint we cannot account for.
      this.own.forget(id);
      throw err;
    }
  }

  /** A leased write without a transaction (leased-writes.ts); then the fingerprint follows it or moves, as for write(). */
  private async writeOne<T>(id: string, statement: () => Promise<LeasedWrite<T>>): Promise<T> {
    try {
      const { value, locked } = await statement();
      if (locked) this.own.wrote(id, locked);
      return value;
    } catch (err) {
      this.own.forget(id);
      throw err;
    }
  }

  /** goose's id: UTC `YYYYMMDD_N`, N one above the day's highest, allocated under a lock in the insert's transaction. */
  async create(metadata: GooseMetadata): Promise<SessionInfo> {
    const values = newRowValues(metadata);
    const cols = Object.keys(values);
    const row = await inTransaction(this.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [ID_LOCK_KEY]);
      const today = new Date().toISOString().slice(0, 10).replaceAll("-", "");
      const r = await c.query<Row>(
        `INSERT INTO sessions (id, ${cols.join(", ")}) VALUES (` +
          `$1 || '_' || (COALESCE((SELECT MAX(SUBSTR(id, 10)::bigint) FROM sessions WHERE id ~ ('^' || $1 || '_[0-9]{1,18}$')), 0) + 1)::text, ` +
          `${cols.map((col, i) => placeholder(col, i + 2)).join(", ")}) RETURNING *`,
        [today, ...cols.map((col) => values[col])],
      );
      return r.rows[0]!;
    });
    return infoOf(row, 0, this.log);
  }

  async info(id: string): Promise<SessionInfo | undefined> {
    this.checkId(id);
    const r = await this.pool.query<Row>("SELECT s.*, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id) AS skein_message_count FROM sessions s WHERE id = $1", [id]);
    const row = r.rows[0];
    return row && infoOf(row, Number(row.skein_message_count), this.log);
  }

  async load(id: string): Promise<LoadedSession | undefined> {
    this.checkId(id);
    const c = await this.pool.connect();
    let read: { row: Row; rows: Row[] } | undefined;
    try {
      // One snapshot: the session row and its messages agree.
      await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      try {
        const s = await c.query<Row>("SELECT * FROM sessions WHERE id = $1", [id]);
        if (s.rows[0]) read = { row: s.rows[0], rows: (await c.query<Row>(SELECT_MESSAGES, [id])).rows };
      } finally {
        await c.query("COMMIT");
      }
    } finally {
      c.release();
    }
    if (!read) return undefined;
    const messages: GooseMessage[] = [];
    let corruptLines = 0;
    for (const r of read.rows) {
      try {
        messages.push(messageOfRow(r));
      } catch (err) {
        corruptLines++;
        this.log.warn({ sessionId: id, rowId: r.id, reason: (err as Error).message }, "skipping a message row that does not parse; it stays in the database");
      }
    }
    return { ...infoOf(read.row, read.rows.length, this.log), messages, corruptLines };
  }

  /**
   * The session row's xmin (every write of this store, on any replica, updates
   * the row in the write's transaction) with the messages' count and highest id.
   * This replica's own leased writes (a run's) keep it (OwnWrites), so a
   * live agent reuses the history it kept; any other write changes it.
   */
  async fingerprint(id: string): Promise<string | undefined> {
    this.checkId(id);
    const r = await this.pool.query<{ v: string }>({ ...FINGERPRINT, values: [id] });
    const raw = r.rows[0]?.v;
    return raw === undefined ? undefined : this.own.answer(id, raw);
  }

  /** Without a round trip while every write since the last fingerprint() was this replica's own leased one (OwnWrites). */
  ownFingerprint(id: string): string | undefined {
    return this.own.known(id);
  }

    /** Newest first by updated_at (bumped by every message), ties by id; the page token is the last row's position. */
  async list(pageSize: number, pageToken: string): Promise<SessionPage> {
    const cursor = pageToken === "" ? undefined : decodeToken(pageToken);
    const r = await this.pool.query<Row>(
      `SELECT s.*, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id) AS skein_message_count, to_char(s.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS skein_pos
       FROM sessions s WHERE s.session_type = ANY($1) AND ($2::timestamp IS NULL OR (s.updated_at AT TIME ZONE 'UTC', s.id) < ($2::timestamp, $3::text))
       ORDER BY s.updated_at DESC, s.id DESC LIMIT $4`,
      [LISTED_TYPES, cursor?.t ?? null, cursor?.i ?? null, pageSize + 1],
    );
    const page = r.rows.slice(0, pageSize);
    const last = page.at(-1);
    return {
      sessions: page.map((row) => infoOf(row, Number(row.skein_message_count), this.log, false)),
      nextPageToken: r.rows.length > pageSize && last ? encodeToken({ t: String(last.skein_pos), i: String(last.id) }) : "",
    };
  }

  async count(): Promise<number> {
    const r = await this.pool.query<{ n: number }>("SELECT COUNT(*) AS n FROM sessions WHERE session_type = ANY($1)", [LISTED_TYPES]);
    return r.rows[0]?.n ?? 0;
  }

  /**
   * Under the run's lease one statement (appendLeased: lease check, updated_at
   * bumped, the row inserted), else one transaction; the session must exist.
   * `created` is raised to the session's latest (goose's add_message rule). A
   * message without an id gets goose's `msg_<session>_<uuid>`, also on the object.
   */
  async append(id: string, message: GooseMessage): Promise<void> {
    this.checkId(id);
    const p = prepareMessage(id, message, "object");
    if (!p) {
      this.log.warn({ sessionId: id, types: message.content.map((c) => c.type) }, "not storing a message with only content types goose cannot read");
      return;
    }
    if (p.dropped.length > 0) this.log.warn({ sessionId: id, types: p.dropped }, "left out content types goose cannot read");
    const leased = this.lease?.sessionId === id ? this.lease : undefined;
    if (leased) await this.writeOne(id, () => appendLeased(this.pool, leased, [p]));
    else await this.write(id, (c) => insertMessages(c, id, [p], true), "touch");
    if (message.id === null) message.id = p.messageId;
  }

  async writeMetadata(id: string, metadata: GooseMetadata): Promise<void> {
    await this.updateMetadata(id, () => metadata);
  }

  /**
   * Atomic against every replica: under the run's lease optimistically in two
   * statements (updateMetadataLeased), else (or when contended) SELECT … FOR
   * UPDATE in a transaction.
   */
  async updateMetadata(id: string, update: (current: GooseMetadata) => GooseMetadata): Promise<GooseMetadata | undefined> {
    this.checkId(id);
    const leased = this.lease?.sessionId === id ? this.lease : undefined;
    if (leased) {
      const out = await this.writeOne(id, () => updateMetadataLeased(this.pool, leased, update));
      if (out !== "contended") return out;
    }
    return this.write(id, async (c, row) => {
      if (!row) return undefined;
      const current = metadataOfRow(row, await messageCount(c, id)).metadata;
      const next = update(current);
      await updateRow(c, id, row, current, next, false);
      return next;
    }, "row");
  }

  /**
   * Compaction: the session's messages become exactly `messages` (in order,
   * keeping their ids and visibility metadata), with the metadata derived
   * from the current one, in one transaction.
   */
  async rewrite(id: string, update: (current: GooseMetadata) => GooseMetadata, messages: readonly GooseMessage[]): Promise<SessionInfo> {
    this.checkId(id);
    const prepared = messages.map((m) => prepareMessage(id, m, "object")).filter((p): p is PreparedMessage => p !== undefined);
    const row = await this.write(id, async (c, before) => {
      if (!before) throw new NotFoundError(`session ${id} does not exist`);
      const current = metadataOfRow(before, await messageCount(c, id)).metadata;
      await c.query("DELETE FROM messages WHERE session_id = $1", [id]);
      await insertMessages(c, id, prepared, true);
      await updateRow(c, id, before, current, update(current), true);
      return (await c.query<Row>("SELECT * FROM sessions WHERE id = $1", [id])).rows[0]!;
    }, "row");
    return infoOf(row, prepared.length);
  }

  /** Deletes the session and its messages (cascade); its replay window goes too, its seq counter stays. */
  async delete(id: string): Promise<boolean> {
    this.checkId(id);
    this.own.forget(id);
    return inTransaction(this.pool, async (c) => {
      await c.query("DELETE FROM session_events WHERE session_id = $1", [id]);
      const r = await c.query("DELETE FROM sessions WHERE id = $1", [id]);
      // Watchers on every replica end (delivered on commit).
      if (r.rowCount === 1) await c.query("SELECT pg_notify($1, $2)", [DELETED_CHANNEL, id]);
      return r.rowCount === 1;
    });
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }

  /** Inserts a session under its own id (skein session import); false, writing nothing, when the id exists. */
  async importSession(s: ImportedSession): Promise<boolean> {
    this.checkId(s.id);
    const prepared = s.messages.map((m) => prepareMessage(s.id, m, "object")).filter((p): p is PreparedMessage => p !== undefined);
    return inTransaction(this.pool, async (c) => {
      const data = isObject(s.metadata.extension_data) ? s.metadata.extension_data : {};
      const own = STATE_KEY in s.metadata ? {} : { [STATE_KEY]: metadataOfRow({ extension_data: JSON.stringify(data) }, 0).metadata[STATE_KEY] };
      const title = s.metadata.description.split(/\s+/).filter(Boolean).join(" ");
      const values: Row = { ...newRowValues({ ...s.metadata, ...own, description: title }, data), created_at: s.createdAt, updated_at: s.updatedAt, ...carriedIn(s.columns) };
      if (s.metadata.schedule_id) values.schedule_id = s.metadata.schedule_id;
      const cols = Object.keys(values);
      const r = await c.query(
        `INSERT INTO sessions (id, ${cols.join(", ")}) VALUES ($1, ${cols.map((col, i) => placeholder(col, i + 2)).join(", ")}) ON CONFLICT (id) DO NOTHING`,
        [s.id, ...cols.map((col) => values[col])],
      );
      if (r.rowCount !== 1) return false;
      await insertMessages(c, s.id, prepared, false);
      return true;
    });
  }

  /** The session in the shape importSession (of this or the sqlite store) takes: for export. */
  async exportSession(id: string): Promise<ImportedSession | undefined> {
    const loaded = await this.load(id);
    if (!loaded) return undefined;
    const r = await this.pool.query<Row>("SELECT * FROM sessions WHERE id = $1", [id]);
    const row = r.rows[0];
    if (!row) return undefined;
    const columns: Row = {};
    for (const c of CARRIED_COLUMNS) {
      const v = row[c];
      if (v === null || v === undefined) continue;
      columns[c] = v instanceof Date ? sqlTimestamp(v) : JSONB_COLUMNS.has(c) ? JSON.stringify(v) : v;
    }
    return { id, metadata: loaded.metadata, messages: loaded.messages, createdAt: sqlTimestamp(row.created_at as Date), updatedAt: sqlTimestamp(row.updated_at as Date), columns };
  }
}

function infoOf(row: Row, messageCount: number, log?: Logger, warn = true): SessionInfo {
  const m = metadataOfRow(asGooseRow(row), messageCount);
  if (warn && log && m.skippedExtensions.length > 0) log.warn({ sessionId: row.id, extensions: m.skippedExtensions }, "stdio extensions in extension_data that skein cannot run; they stay stored");
  return { id: String(row.id), metadata: m.metadata, updatedAt: row.updated_at instanceof Date ? row.updated_at : new Date(0) };
}

const encodeToken = (c: { t: string; i: string }) => encodePageToken(c);
const decodeToken = (token: string) =>
  decodePageToken<{ t: string; i: string }>(token, (v) => typeof v.t === "string" && /^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(v.t) && typeof v.i === "string");
