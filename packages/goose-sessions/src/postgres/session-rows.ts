import type pg from "pg";
import type { GooseMetadata } from "../goose-format/messages.js";
import type { PreparedMessage } from "../goose-rows/messages.js";
import { CARRIED_COLUMNS } from "../copy-session.js";
import { columnChanges, metadataOfRow, TOKEN_COLUMNS, type Row } from "../goose-rows/rows.js";

/**
 * The sessions and messages rows as this schema holds them, and the SQL a
 * write runs inside its transaction (PostgresSessionStore).
 */

/** Every column the domain's metadata maps to (sqlite/rows.ts decides which change). */
export const SESSION_COLUMNS: ReadonlySet<string> = new Set([
  "name",
  "description",
  "user_set_name",
  "working_dir",
  "extension_data",
  "schedule_id",
  "goose_mode",
  ...TOKEN_COLUMNS,
]);
export const JSONB_COLUMNS = new Set(["extension_data", "recipe_json", "user_recipe_values_json", "model_config_json"]);
/** Timestamps arrive as sessions.db's UTC text `YYYY-MM-DD HH:MM:SS`. */
export const TIME_COLUMNS = new Set(["created_at", "updated_at", "archived_at"]);
/** `$n`, cast for JSON columns (values are JSON text) and sessions.db's UTC timestamps. */
export function placeholder(col: string, n: number): string {
  if (JSONB_COLUMNS.has(col)) return `$${n}::jsonb`;
  if (TIME_COLUMNS.has(col)) return `($${n}::timestamp AT TIME ZONE 'UTC')`;
  return `$${n}`;
}

/** The sqlite row helpers read extension_data as JSON text and user_set_name as 0/1: a PostgreSQL row in that shape. */
export function asGooseRow(row: Row): Row {
  return { ...row, extension_data: row.extension_data === null || row.extension_data === undefined ? "{}" : JSON.stringify(row.extension_data) };
}

export function fromGooseValue(col: string, v: unknown): unknown {
  return col === "user_set_name" ? v === 1 || v === true : v;
}

export async function lockedRow(c: pg.ClientBase, id: string): Promise<Row | undefined> {
  const r = await c.query<Row>("SELECT * FROM sessions WHERE id = $1 FOR UPDATE", [id]);
  return r.rows[0] && asGooseRow(r.rows[0]);
}

export async function messageCount(c: pg.ClientBase, id: string): Promise<number> {
  const r = await c.query<{ n: number }>("SELECT COUNT(*) AS n FROM messages WHERE session_id = $1", [id]);
  return r.rows[0]?.n ?? 0;
}

export async function updateRow(c: pg.ClientBase, id: string, row: Row, before: GooseMetadata, after: GooseMetadata, touch: boolean): Promise<void> {
  const set = rowSets(row, before, after, touch, 2);
  if (set) await c.query(`UPDATE sessions SET ${set.sql} WHERE id = $1`, [id, ...set.params]);
}

/** updateRow's SET list (updated_at bumped), its parameters from $first on; undefined when no column changes and no touch is asked. */
export function rowSets(row: Row, before: GooseMetadata, after: GooseMetadata, touch: boolean, first: number): { sql: string; params: unknown[] } | undefined {
  const changes = columnChanges(row, before, after, SESSION_COLUMNS);
  const cols = Object.keys(changes);
  if (cols.length === 0 && !touch) return undefined;
  const sets = [...cols.map((col, i) => `${col} = ${placeholder(col, i + first)}`), "updated_at = now()"];
  return { sql: sets.join(", "), params: cols.map((col) => fromGooseValue(col, changes[col])) };
}

/**
 * Inserts messages in order in one statement. `raise`: created_timestamp is
 * raised to the session's latest so the read order `created_timestamp, id`
 * keeps the given order (goose's add_message rule); imports keep their times.
 */
export async function insertMessages(c: pg.ClientBase, id: string, ps: readonly PreparedMessage[], raise: boolean): Promise<void> {
  if (ps.length === 0) return;
  const insert = messagesInsert(ps, raise, 2);
  await c.query(insert.sql, [id, ...insert.params]);
}

/**
 * insertMessages' statement, for use alone or as a CTE of a larger one: $1 is
 * the session id, its own parameters start at $first; `when` (SQL) gates the
 * insert. The raised floor is the session's latest created_timestamp as the
 * statement's snapshot shows it: taken after this statement's transaction
 * locked the session row when that was an earlier statement, or, in one
 * statement that takes the lock itself, after the writer's lease was taken
 * (see appendLeased).
 */
export function messagesInsert(ps: readonly PreparedMessage[], raise: boolean, first: number, when?: string): { sql: string; params: unknown[] } {
  // Raised: the running maximum of the given times, then at least the session's latest.
  let top = 0;
  const times = ps.map((p) => (raise ? (top = Math.max(top, p.created)) : p.created));
  const floor = raise ? "(SELECT COALESCE(MAX(created_timestamp), 0) FROM messages WHERE session_id = $1)" : "0";
  const n = (k: number) => `$${first + k}`;
  return {
    sql: `INSERT INTO messages (session_id, message_id, role, content_json, created_timestamp, metadata_json)
     SELECT $1, m, r, c::jsonb, GREATEST(t, ${floor}), md::jsonb FROM unnest(${n(0)}::text[], ${n(1)}::text[], ${n(2)}::text[], ${n(3)}::bigint[], ${n(4)}::text[]) WITH ORDINALITY AS x(m, r, c, t, md, n)
     ${when ? `WHERE ${when} ` : ""}ORDER BY n`,
    params: [ps.map((p) => p.messageId), ps.map((p) => p.role), ps.map((p) => p.contentJson), times, ps.map((p) => p.metadataJson)],
  };
}

/** The carried goose columns of an imported session, as this schema takes them (JSON text stays text; cast on insert). */
export function carriedIn(columns: Readonly<Row> | undefined): Row {
  const out: Row = {};
  for (const c of CARRIED_COLUMNS) {
    const v = columns?.[c];
    if (v === null || v === undefined) continue;
    if (JSONB_COLUMNS.has(c) && typeof v !== "string") continue;
    out[c] = v;
  }
  return out;
}

/** A new session row's column values from `metadata`. */
export function newRowValues(metadata: GooseMetadata, extensionData: Record<string, unknown> = {}): Row {
  const empty: Row = { extension_data: JSON.stringify(extensionData) };
  const changes = columnChanges(empty, metadataOfRow(empty, 0).metadata, metadata, SESSION_COLUMNS);
  const out: Row = { working_dir: metadata.working_dir, extension_data: empty.extension_data, session_type: "user" };
  for (const [col, v] of Object.entries(changes)) out[col] = fromGooseValue(col, v);
  return out;
}
