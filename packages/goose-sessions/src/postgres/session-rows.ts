import type pg from "pg";
import type { GooseMetadata } from "../goose-format/messages.js";
import type { PreparedMessage } from "../goose-rows/messages.js";
import { columnChanges, TOKEN_COLUMNS, type Row } from "../goose-rows/rows.js";

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
  const changes = columnChanges(row, before, after, SESSION_COLUMNS);
  const cols = Object.keys(changes);
  if (cols.length === 0 && !touch) return;
  const sets = [...cols.map((col, i) => `${col} = ${placeholder(col, i + 2)}`), "updated_at = now()"];
  await c.query(`UPDATE sessions SET ${sets.join(", ")} WHERE id = $1`, [id, ...cols.map((col) => fromGooseValue(col, changes[col]))]);
}

/**
 * Inserts messages in order in one statement. `raise`: created_timestamp is
 * raised to the session's latest so the read order `created_timestamp, id`
 * keeps the given order (goose's add_message rule); imports keep their times.
 */
export async function insertMessages(c: pg.ClientBase, id: string, ps: readonly PreparedMessage[], raise: boolean): Promise<void> {
  if (ps.length === 0) return;
  // Raised: the running maximum of the given times, then at least the session's latest, read in the
  // same statement (a fresh snapshot taken after this transaction locked the session row).
  let top = 0;
  const times = ps.map((p) => (raise ? (top = Math.max(top, p.created)) : p.created));
  const floor = raise ? "(SELECT COALESCE(MAX(created_timestamp), 0) FROM messages WHERE session_id = $1)" : "0";
  await c.query(
    `INSERT INTO messages (session_id, message_id, role, content_json, created_timestamp, metadata_json)
     SELECT $1, m, r, c::jsonb, GREATEST(t, ${floor}), md::jsonb FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[]) WITH ORDINALITY AS x(m, r, c, t, md, n) ORDER BY n`,
    [id, ps.map((p) => p.messageId), ps.map((p) => p.role), ps.map((p) => p.contentJson), times, ps.map((p) => p.metadataJson)],
  );
}
